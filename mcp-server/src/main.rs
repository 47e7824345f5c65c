//! `mcp-server [PORT]`: the guide's MCP server on 0.0.0.0:8000 (AgentCore's MCP contract).
//! The port comes from the first argument, else `PORT`, else 8000.

use std::process::ExitCode;

fn port() -> Result<u16, String> {
    let given = std::env::args()
        .nth(1)
        .map(|p| ("the argument", p))
        .or_else(|| std::env::var("PORT").ok().map(|p| ("PORT", p)));
    match given {
        None => Ok(mcp_server::DEFAULT_PORT),
        Some((_, p)) if p == "-h" || p == "--help" => Err(
            "usage: mcp-server [PORT]  (default: $PORT, else 8000; serves POST /mcp and GET /ping on 0.0.0.0)"
                .to_string(),
        ),
        Some((from, p)) => p
            .parse()
            .map_err(|_| format!("{from} {p:?} is not a port number")),
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let port = match port() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on 0.0.0.0:{port}: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "MCP server on http://0.0.0.0:{port}{}",
        mcp_server::MCP_PATH
    );
    match mcp_server::serve(listener, shutdown()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
