"""Start moto's standalone server (the AWS emulator used for tests and the demo).

Three fidelity fixes are applied before it starts:

- moto leaves an updated AgentCore runtime in UPDATING forever, while AgentCore moves it to
  READY once the new version is live. The transition UPDATING -> READY is added so that an
  update can be waited on like a create.
- moto ignores CreateAgentRuntime's clientToken. AgentCore answers a repeated create with
  the same token with the runtime the first one made (the SDK resends a create whose
  answer was lost). The token is honoured here.
- moto names a runtime `agent/UUID:VERSION`, a new ARN at every update, and keys tags by
  ARN, so an update drops the runtime's tags. AgentCore's runtime ARN is
  `runtime/RUNTIME_ID`, the same for every version, and tags belong to the runtime; here
  the ARN is AgentCore's (so IAM policies scoped to `runtime/*` match what the emulator
  answers), and tags are carried over should the ARN ever change.
- moto's IAM enforcement (INITIAL_NO_AUTH_ACTION_COUNT) checks a call naming a role
  that does not exist yet (CreateRole) against the resource `*`. IAM checks it against the
  ARN the role will have, so a policy scoped to `role/NAME` allows it; here it does too.
- With IAM enforcement on, moto refuses every AgentCore control-plane call with
  SignatureDoesNotMatch (boto3's too: it signs AgentCore's REST paths differently from
  the SDKs). Those calls' signatures are not checked here; their authorization still is.
- moto keeps a Cognito user pool's LastModifiedDate at its creation time through
  UpdateUserPool. Cognito moves it on every change ("the date and time when the item was
  modified"); here UpdateUserPool moves it too.

With EMULATOR_REQUEST_LOG=PATH set, every request is appended to PATH as a JSON line
(time, user agent, method, path, service and operation), so that a test can tell which
process made which call (leader election: at most one replica writes at a time).

Usage: python scripts/emulator.py [--exit-with PID] --port PORT [--host 127.0.0.1]

With --exit-with PID the emulator exits when process PID does (test harnesses use this so
that no emulator outlives its test run).
"""

import os
import sys
import threading
import time

from moto.bedrockagentcorecontrol import models as agentcore
from moto.bedrockagentcorecontrol import responses as agentcore_responses
from moto.cognitoidp import models as cognito
from moto.iam import access_control as iam_access_control
from moto.iam import responses as iam_responses
from moto.core.responses import ActionResult
from moto.core.utils import utcnow

_original_init = agentcore.AgentRuntime.__init__


def _runtime_arn(runtime) -> str:
    return (
        f"arn:aws:bedrock-agentcore:{runtime.region_name}:{runtime.account_id}"
        f":runtime/{runtime.agent_runtime_id}"
    )


def _init_with_update_transition(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    self._transitions = [("CREATING", "READY"), ("UPDATING", "READY")]
    # moto's own update derives the next version's ARN from the last one.
    self._moto_arn = self.agent_runtime_arn
    self.agent_runtime_arn = _runtime_arn(self)
    for version in self.versions:
        version["agentRuntimeArn"] = self.agent_runtime_arn


agentcore.AgentRuntime.__init__ = _init_with_update_transition

_original_runtime_update = agentcore.AgentRuntime.update


def _update_keeping_the_arn(self, *args, **kwargs):
    self.agent_runtime_arn = self._moto_arn
    try:
        _original_runtime_update(self, *args, **kwargs)
        self._moto_arn = self.agent_runtime_arn
    finally:
        self.agent_runtime_arn = _runtime_arn(self)
    for version in self.versions:
        version["agentRuntimeArn"] = self.agent_runtime_arn




def _update_replacing_the_configuration(self, *args, **kwargs):
    # AgentCore's UpdateAgentRuntime replaces the whole configuration: each version is
    # complete and self-contained, and what the request leaves out (environment
    # variables, the authorizer, lifecycle, ...) is not carried over from the last one.
    # moto keeps every field the request omits; reset them to what a create without them
    # gives, before moto sets those the request names (and snapshots the version).
    self.description = ""
    self.authorizer_configuration = None
    self.request_header_configuration = None
    self.protocol_configuration = None
    self.lifecycle_configuration = {}
    self.environment_variables = None
    _update_keeping_the_arn(self, *args, **kwargs)


agentcore.AgentRuntime.update = _update_replacing_the_configuration

_original_create_runtime = agentcore_responses.BedrockAgentCoreControlResponse.create_agent_runtime
_runtime_by_token: dict = {}
_runtime_by_token_lock = threading.Lock()


def _create_runtime_idempotent(self):
    token = self._get_params().get("clientToken")
    if not token:
        return _original_create_runtime(self)
    key = (self.current_account, self.region, token)
    with _runtime_by_token_lock:
        known = _runtime_by_token.get(key)
        if known is not None and known["agentRuntimeId"] in self.backend.agent_runtimes:
            return ActionResult(dict(known))
        result = _original_create_runtime(self)
        _runtime_by_token[key] = dict(result.result)
        return result


agentcore_responses.BedrockAgentCoreControlResponse.create_agent_runtime = (
    _create_runtime_idempotent
)

_original_update_runtime = agentcore.BedrockAgentCoreControlBackend.update_agent_runtime


def _update_runtime_keeping_tags(self, agent_runtime_id, *args, **kwargs):
    before = self._get_runtime(agent_runtime_id).agent_runtime_arn
    tags = self.tagger.list_tags_for_resource(before)["Tags"]
    runtime = _original_update_runtime(self, agent_runtime_id, *args, **kwargs)
    if tags and runtime.agent_runtime_arn != before:
        self.tagger.tag_resource(runtime.agent_runtime_arn, tags)
    return runtime


agentcore.BedrockAgentCoreControlBackend.update_agent_runtime = _update_runtime_keeping_tags


_original_update_user_pool = cognito.CognitoIdpBackend.update_user_pool


def _update_user_pool_moving_last_modified(self, user_pool_id, *args, **kwargs):
    _original_update_user_pool(self, user_pool_id, *args, **kwargs)
    self.describe_user_pool(user_pool_id).last_modified_date = utcnow()


cognito.CognitoIdpBackend.update_user_pool = _update_user_pool_moving_last_modified


# The request parameters that name what a call acts on (never values: no secret is
# logged).
_NAMING = {
    "Name",
    "Path",
    "SecretId",
    "repositoryName",
    "RoleName",
    "UserPoolId",
    "TableName",
    "ResourceId",
    "ResourceArn",
    "resourceArn",
    "roleArn",
}


def _log_requests(path: str) -> None:
    """Wrap moto's WSGI application so that each request is logged before it is served."""
    import io
    import json
    from urllib.parse import parse_qs

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.__call__
    lock = threading.Lock()
    out = open(path, "a", buffering=1)

    def logged(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        service, _, operation = target.rpartition(".")
        content_type = environ.get("CONTENT_TYPE", "")
        params = {}
        if environ.get("REQUEST_METHOD") in ("POST", "PUT") and (
            "form-urlencoded" in content_type or "json" in content_type
        ):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            text = body.decode("utf-8", "replace")
            if "form-urlencoded" in content_type:
                # Query protocol (IAM, STS): the operation is the form's Action.
                form = parse_qs(text)
                operation = operation or form.get("Action", [""])[0]
                params = {k: v[0] for k, v in form.items() if k in _NAMING}
            else:
                try:
                    doc = json.loads(text) if text else {}
                except ValueError:
                    doc = {}
                if isinstance(doc, dict):
                    params = {k: v for k, v in doc.items() if k in _NAMING and isinstance(v, str)}
        line = json.dumps(
            {
                "t": time.time(),
                "ua": environ.get("HTTP_USER_AGENT", ""),
                "method": environ.get("REQUEST_METHOD", ""),
                "path": environ.get("PATH_INFO", ""),
                "service": service,
                "operation": operation,
                "params": params,
            }
        )
        with lock:
            out.write(line + "\n")
        return original(self, environ, start_response)

    DomainDispatcherApplication.__call__ = logged


def _role_resource(self) -> str:
    if "RoleName" not in self.data:
        return "*"
    name = self.data["RoleName"][0]
    try:
        return self.backend.get_role(name).arn
    except Exception:  # not there yet: the ARN it will have
        path = self.data.get("Path", ["/"])[0]
        return f"arn:aws:iam::{self.current_account}:role{path}{name}"


iam_responses.IamResponse._determine_resource = _role_resource

_original_check_signature = iam_access_control.IAMRequestBase.check_signature


def _check_signature_but_agentcore(self) -> None:
    if "/bedrock-agentcore/aws4_request" in self._headers.get("Authorization", ""):
        return
    _original_check_signature(self)


iam_access_control.IAMRequestBase.check_signature = _check_signature_but_agentcore


def _exit_with(pid: int) -> None:
    def watch() -> None:
        while True:
            try:
                os.kill(pid, 0)
            except OSError:
                os._exit(0)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":
    from moto.server import main

    if os.environ.get("EMULATOR_REQUEST_LOG"):
        _log_requests(os.environ["EMULATOR_REQUEST_LOG"])
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--exit-with":
        _exit_with(int(args[1]))
        args = args[2:]
    main(args)
