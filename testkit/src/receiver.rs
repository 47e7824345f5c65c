//! A local webhook receiver for the daemon's notifications (`--notify URL`): it keeps every
//! body posted to it, for tests to count events by reason and object.

use std::sync::{Arc, Mutex};

pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`, for `--notify`.
    pub url: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Receiver {
    /// Serve on a free loopback port (on the current tokio runtime) until the test ends.
    pub async fn start() -> Receiver {
        let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let kept = bodies.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let kept = kept.clone();
                async move {
                    let value =
                        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
                    kept.lock().expect("bodies").push(value);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, bodies }
    }

    /// Every event received, in order.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().expect("bodies").clone()
    }

    /// The events of this reason (and, if given, about the object of this name, or of a
    /// revision holding it).
    pub fn of(&self, reason: &str, about: Option<&str>) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e["reason"] == reason)
            .filter(|e| {
                about.is_none_or(|a| {
                    e["object"]["name"] == a
                        || e["revision"].as_str().is_some_and(|r| r.contains(a))
                })
            })
            .collect()
    }
}
