"""Start moto's standalone server (the AWS emulator used for tests and the demo).

These fidelity fixes are applied before it starts:

- moto leaves an updated AgentCore runtime in UPDATING forever, while AgentCore moves it to
  READY once the new version is live. The transition UPDATING -> READY is added so that an
  update can be waited on like a create.
- moto's UpdateAgentRuntime keeps every field the request leaves out; AgentCore replaces
  the whole configuration (each version is complete and self-contained), and so does the
  emulator.
- moto keeps only a runtime's latest configuration and ignores `?version=N`: its
  GetAgentRuntime answers the latest version whatever is asked, and its DeleteAgentRuntime
  deletes the whole runtime (and its endpoints) when asked to delete one version. Here
  every version is a full snapshot; GetAgentRuntime?version=N answers it (unknown:
  ResourceNotFoundException), DeleteAgentRuntime?version=N deletes only it (the latest,
  or one an endpoint serves or is moving to: ConflictException) and
  ListAgentRuntimeVersions lists those left.
- moto's runtime endpoints have an `agentEndpoint/UUID` ARN, stay UPDATING forever on
  their old version after an update, and are listed without their versions; there is no
  DEFAULT endpoint and no validation. Here the ARN is AgentCore's
  (`runtime/ID/runtime-endpoint/NAME`), an update reaches READY serving the version it
  asked for, summaries carry liveVersion and targetVersion, each runtime has a DEFAULT
  endpoint serving its latest version (which cannot be updated or deleted:
  ValidationException), a bad name or a version that does not exist is refused
  (ValidationException), and a name already taken is a ConflictException.
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
- moto has no UpdateResourceServer or DeleteResourceServer; they are added.
- moto takes any user pool domain, and a second CreateUserPoolDomain for a domain moves
  it to the new pool. Here a prefix domain must match Cognito's pattern and not contain
  aws, amazon or cognito; a domain is unique in its region and a pool has at most one
  (InvalidParameterException); DescribeUserPoolDomain names the account.
- moto takes any OAuth flows and scopes on an app client. Cognito refuses
  client_credentials with another flow or without a client secret
  (InvalidOAuthFlowException), and a custom scope no resource server defines
  (ScopeDoesNotExistException); so does the emulator.
- moto's app client secrets are UUIDs (with `-`, outside Cognito's `[\w+]+`). Here a
  secret is 51 characters of that pattern and always holds a `+`, which Cognito's allow,
  so that every client exercises how the Basic credentials are encoded.
- moto has no OAuth 2.0 token endpoint. `POST /oauth2/token` is served here with
  Cognito's client_credentials grant: the client authenticates with HTTP Basic
  (`Basic Base64Encode(client_id:client_secret)`, taken verbatim: Cognito documents no
  URL-encoding, so a `+` in a secret is a `+`) or with client_id and client_secret in
  the form; the Cognito domain meant is named in
  X-Forwarded-Host (else the client's pool must have a domain); the answer and its error
  codes are Cognito's, and the access token (sub = client_id, scope, no username) is
  signed with the pool's key under the kid of moto's JWKS, so it verifies like moto's
  own tokens.

With EMULATOR_REQUEST_LOG=PATH set, every request is appended to PATH as a JSON line
(time, user agent, method, path, service and operation), so that a test can tell which
process made which call (leader election: at most one replica writes at a time).

Usage: python scripts/emulator.py [--exit-with PID] --port PORT [--host 127.0.0.1]

With --exit-with PID the emulator exits when process PID does (test harnesses use this so
that no emulator outlives its test run).
"""

import copy
import os
import re
import sys
import threading
import time
import uuid
from urllib.parse import parse_qs

from moto.bedrockagentcorecontrol import exceptions as agentcore_exceptions
from moto.bedrockagentcorecontrol import models as agentcore
from moto.bedrockagentcorecontrol import responses as agentcore_responses
from moto.cognitoidp import exceptions as cognito_exceptions
from moto.cognitoidp import models as cognito
from moto.cognitoidp import responses as cognito_responses
from moto.iam import access_control as iam_access_control
from moto.iam import responses as iam_responses
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult, EmptyResult
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


# --- Runtime versions ----------------------------------------------------------------
# AgentCore keeps every version of a runtime as an immutable, complete snapshot of its
# configuration (devguide agent-runtime-versioning.html: "each version is complete and
# self-contained"); GetAgentRuntime takes `?version=N` to read one, and DeleteAgentRuntime
# takes `?version=N` to delete only that version (API_DeleteAgentRuntime.html: "When you
# provide this value, only that version is deleted"). moto keeps the latest configuration
# only, ignores `version` on both calls, and so deletes the whole runtime (and its
# endpoints) when asked to delete one version.

# What a version pins, as GetAgentRuntime names it, and the runtime's attribute.
_VERSIONED = {
    "agentRuntimeArtifact": "agent_runtime_artifact",
    "roleArn": "role_arn",
    "networkConfiguration": "network_configuration",
    "description": "description",
    "authorizerConfiguration": "authorizer_configuration",
    "requestHeaderConfiguration": "request_header_configuration",
    "protocolConfiguration": "protocol_configuration",
    "lifecycleConfiguration": "lifecycle_configuration",
    "environmentVariables": "environment_variables",
    "lastUpdatedAt": "last_updated_at",
}


def _snapshot(runtime) -> None:
    if not hasattr(runtime, "_snapshots"):
        runtime._snapshots = {}
    runtime._snapshots[runtime.agent_runtime_version] = {
        key: copy.deepcopy(getattr(runtime, attr)) for key, attr in _VERSIONED.items()
    }


def _query_param(response, name: str):
    """A query-string parameter, read from the URL itself: moto's REST parser drops
    those its handler does not ask for."""
    values = parse_qs(response.parsed_url.query).get(name)
    return values[0] if values else None


class ValidationException(agentcore_exceptions.BedrockAgentCoreControlClientError):
    code = "ValidationException"
    reason = "FieldValidationFailed"


_init_with_arn = agentcore.AgentRuntime.__init__


def _init_with_snapshot(self, *args, **kwargs):
    _init_with_arn(self, *args, **kwargs)
    _snapshot(self)


agentcore.AgentRuntime.__init__ = _init_with_snapshot

_update_replacing = agentcore.AgentRuntime.update


def _update_with_snapshot(self, *args, **kwargs):
    _update_replacing(self, *args, **kwargs)
    _snapshot(self)


agentcore.AgentRuntime.update = _update_with_snapshot


def _version_status(runtime, version: str) -> str:
    # The latest version is as ready as the runtime; an earlier one was READY when
    # the next was made, and stays so.
    return runtime.status if version == runtime.agent_runtime_version else "READY"


_original_get_runtime = agentcore_responses.BedrockAgentCoreControlResponse.get_agent_runtime


def _get_runtime_version(self):
    result = _original_get_runtime(self)
    version = _query_param(self, "version")
    if version is None:
        return result
    runtime = self.backend._get_runtime(self._get_param("agentRuntimeId"))
    snapshot = runtime._snapshots.get(version)
    if snapshot is None:
        raise agentcore.ResourceNotFoundException(
            f"Could not find version {version} of Agent Runtime {runtime.agent_runtime_id}"
        )
    answer = dict(result.result)
    for key, value in snapshot.items():
        answer.pop(key, None)
        # The optional blocks are left out when empty, as for the latest version.
        if value or key in ("description", "lifecycleConfiguration"):
            answer[key] = copy.deepcopy(value)
    answer["agentRuntimeVersion"] = version
    answer["status"] = _version_status(runtime, version)
    return ActionResult(answer)


agentcore_responses.BedrockAgentCoreControlResponse.get_agent_runtime = _get_runtime_version

_original_delete_runtime = agentcore_responses.BedrockAgentCoreControlResponse.delete_agent_runtime
# (account, region, runtime id, version, clientToken) of the version deletes done: a
# repeated request is answered as the first was (the API's clientToken).
_version_deletes: set = set()


def _delete_runtime_version(self):
    version = _query_param(self, "version")
    if version is None:
        return _original_delete_runtime(self)
    runtime_id = self._get_param("agentRuntimeId")
    answer = {"status": "DELETING", "agentRuntimeId": runtime_id, "agentRuntimeVersion": version}
    token = _query_param(self, "clientToken")
    key = (self.current_account, self.region, runtime_id, version, token)
    if token and key in _version_deletes:
        return ActionResult(answer)
    runtime = self.backend._get_runtime(runtime_id)
    if version not in runtime._snapshots:
        raise agentcore.ResourceNotFoundException(
            f"Could not find version {version} of Agent Runtime {runtime_id}"
        )
    # The version serving the runtime's DEFAULT endpoint, and those an endpoint serves
    # or is moving to, cannot go (the API lists ConflictException for this call).
    if version == runtime.agent_runtime_version:
        raise agentcore.ConflictException(
            f"Version {version} is the latest version of Agent Runtime {runtime_id}"
        )
    for (rid, name), endpoint in self.backend.agent_runtime_endpoints.items():
        if rid == runtime_id:
            _settle(endpoint)
        if rid == runtime_id and version in (endpoint.live_version, endpoint.target_version):
            raise agentcore.ConflictException(
                f"Version {version} of Agent Runtime {runtime_id} is used by endpoint {name}"
            )
    del runtime._snapshots[version]
    runtime.versions = [v for v in runtime.versions if v["agentRuntimeVersion"] != version]
    if token:
        _version_deletes.add(key)
    return ActionResult(answer)


agentcore_responses.BedrockAgentCoreControlResponse.delete_agent_runtime = _delete_runtime_version


def _list_remaining_versions(self, agent_runtime_id):
    # Newest first, as moto lists them; each version's status as GetAgentRuntime
    # gives it.
    runtime = self._get_runtime(agent_runtime_id)
    out = []
    for summary in reversed(runtime.versions):
        summary = dict(summary)
        summary["agentRuntimeArn"] = runtime.agent_runtime_arn
        summary["status"] = _version_status(runtime, summary["agentRuntimeVersion"])
        out.append(summary)
    return out


agentcore.BedrockAgentCoreControlBackend.list_agent_runtime_versions = _list_remaining_versions


# --- Runtime endpoints -----------------------------------------------------------------
# AgentCore (devguide agent-runtime-versioning.html; API_GetAgentRuntimeEndpoint.html):
# - an endpoint's ARN is `{runtime ARN}/runtime-endpoint/{name}` (the model's
#   AgentRuntimeEndpointArn pattern); moto's is `agentEndpoint/UUID`;
# - an update moves the endpoint to UPDATING, then READY with liveVersion = the
#   targetVersion asked for; moto left it UPDATING forever on the old liveVersion;
# - ListAgentRuntimeEndpoints' summaries carry liveVersion and targetVersion; moto's
#   leave them out;
# - every runtime has a DEFAULT endpoint that always serves the latest version and that
#   cannot be updated or deleted; moto has none;
# - the name is `[a-zA-Z][a-zA-Z0-9_]{0,47}` (model EndpointName), and a version that
#   does not exist cannot be served (assumed ValidationException, a listed error);
#   moto checks neither.

_ENDPOINT_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,47}")
_DEFAULT = "DEFAULT"
_original_endpoint_init = agentcore.AgentRuntimeEndpoint.__init__


def _endpoint_init(self, region_name, account_id, agent_runtime, name, *args, **kwargs):
    _original_endpoint_init(self, region_name, account_id, agent_runtime, name, *args, **kwargs)
    self._transitions = [("CREATING", "READY"), ("UPDATING", "READY")]
    self.agent_runtime_endpoint_arn = f"{_runtime_arn(agent_runtime)}/runtime-endpoint/{name}"


agentcore.AgentRuntimeEndpoint.__init__ = _endpoint_init


def _settle(endpoint) -> None:
    # Once READY (moto's state manager moves it on being read), the endpoint serves
    # the version it was moving to.
    if endpoint.status == "READY":
        endpoint.live_version = endpoint.target_version


_original_endpoint_summary = agentcore.AgentRuntimeEndpoint.to_summary


def _endpoint_summary(self):
    _settle(self)
    summary = _original_endpoint_summary(self)
    summary["liveVersion"] = self.live_version
    summary["targetVersion"] = self.target_version
    return summary


agentcore.AgentRuntimeEndpoint.to_summary = _endpoint_summary


def _default_endpoint(runtime):
    endpoint = agentcore.AgentRuntimeEndpoint(
        region_name=runtime.region_name,
        account_id=runtime.account_id,
        agent_runtime=runtime,
        name=_DEFAULT,
        agent_runtime_version=runtime.agent_runtime_version,
        description=None,
    )
    endpoint.endpoint_id = f"{runtime.agent_runtime_id}-{_DEFAULT}"
    endpoint.created_at = runtime.created_at
    endpoint.last_updated_at = runtime.last_updated_at
    return endpoint


def _check_endpoint_version(runtime, version) -> None:
    if version is not None and version not in runtime._snapshots:
        raise ValidationException(
            f"Version {version} of Agent Runtime {runtime.agent_runtime_id} does not exist"
        )


_original_create_endpoint = agentcore.BedrockAgentCoreControlBackend.create_agent_runtime_endpoint


def _create_endpoint(self, agent_runtime_id, name, agent_runtime_version, *args, **kwargs):
    if not isinstance(name, str) or not _ENDPOINT_NAME.fullmatch(name):
        raise ValidationException(f"Endpoint name {name!r} must match [a-zA-Z][a-zA-Z0-9_]{{0,47}}")
    runtime = self._get_runtime(agent_runtime_id)
    if name == _DEFAULT:
        raise agentcore.ConflictException(
            f"Endpoint {name} already exists for Agent Runtime {agent_runtime_id}"
        )
    _check_endpoint_version(runtime, agent_runtime_version)
    return _original_create_endpoint(
        self, agent_runtime_id, name, agent_runtime_version, *args, **kwargs
    )


agentcore.BedrockAgentCoreControlBackend.create_agent_runtime_endpoint = _create_endpoint

_original_get_endpoint = agentcore.BedrockAgentCoreControlBackend.get_agent_runtime_endpoint


def _get_endpoint(self, agent_runtime_id, endpoint_name):
    if endpoint_name == _DEFAULT:
        return _default_endpoint(self._get_runtime(agent_runtime_id))
    endpoint = _original_get_endpoint(self, agent_runtime_id, endpoint_name)
    _settle(endpoint)
    return endpoint


agentcore.BedrockAgentCoreControlBackend.get_agent_runtime_endpoint = _get_endpoint


def _refuse_default(agent_runtime_id, endpoint_name, verb: str) -> None:
    if endpoint_name == _DEFAULT:
        raise ValidationException(
            f"The DEFAULT endpoint of Agent Runtime {agent_runtime_id} cannot be {verb};"
            " it always serves the latest version"
        )


_original_update_endpoint = agentcore.BedrockAgentCoreControlBackend.update_agent_runtime_endpoint


def _update_endpoint(self, agent_runtime_id, endpoint_name, agent_runtime_version, *args, **kwargs):
    _refuse_default(agent_runtime_id, endpoint_name, "updated")
    _check_endpoint_version(self._get_runtime(agent_runtime_id), agent_runtime_version)
    return _original_update_endpoint(
        self, agent_runtime_id, endpoint_name, agent_runtime_version, *args, **kwargs
    )


agentcore.BedrockAgentCoreControlBackend.update_agent_runtime_endpoint = _update_endpoint

_original_delete_endpoint = agentcore.BedrockAgentCoreControlBackend.delete_agent_runtime_endpoint


def _delete_endpoint(self, agent_runtime_id, endpoint_name):
    _refuse_default(agent_runtime_id, endpoint_name, "deleted")
    return _original_delete_endpoint(self, agent_runtime_id, endpoint_name)


agentcore.BedrockAgentCoreControlBackend.delete_agent_runtime_endpoint = _delete_endpoint

_original_list_endpoints = agentcore.BedrockAgentCoreControlBackend.list_agent_runtime_endpoints


def _list_endpoints(self, agent_runtime_id):
    named = _original_list_endpoints(self, agent_runtime_id)
    return [_default_endpoint(self._get_runtime(agent_runtime_id))] + named


agentcore.BedrockAgentCoreControlBackend.list_agent_runtime_endpoints = _list_endpoints


_original_update_user_pool = cognito.CognitoIdpBackend.update_user_pool


def _update_user_pool_moving_last_modified(self, user_pool_id, *args, **kwargs):
    _original_update_user_pool(self, user_pool_id, *args, **kwargs)
    self.describe_user_pool(user_pool_id).last_modified_date = utcnow()


cognito.CognitoIdpBackend.update_user_pool = _update_user_pool_moving_last_modified


# --- Cognito resource servers ------------------------------------------------------------
# Cognito has UpdateResourceServer, which replaces the name and scopes (what the request
# leaves out is reset: API_UpdateResourceServer.html), and DeleteResourceServer; moto has
# neither (only Create, Describe and List).


def _update_resource_server(self):
    pool_id = self._get_param("UserPoolId")
    identifier = self._get_param("Identifier")
    server = self.backend.describe_resource_server(pool_id, identifier)
    server.name = self._get_param("Name")
    server.scopes = self._get_param("Scopes") or []
    return ActionResult({"ResourceServer": server.to_json()})


def _delete_resource_server(self):
    pool_id = self._get_param("UserPoolId")
    identifier = self._get_param("Identifier")
    self.backend.describe_resource_server(pool_id, identifier)
    del self.backend.describe_user_pool(pool_id).resource_servers[identifier]
    return EmptyResult()


cognito_responses.CognitoIdpResponse.update_resource_server = _update_resource_server
cognito_responses.CognitoIdpResponse.delete_resource_server = _delete_resource_server


# --- Cognito domains ---------------------------------------------------------------------
# A prefix domain is `^[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?$` (the API model's DomainType)
# and may not contain `aws`, `amazon` or `cognito` (devguide
# cognito-user-pools-assign-domain-prefix.html); it is unique in its region (its host is
# `{prefix}.auth.{region}.amazoncognito.com`), and a pool has at most one. moto checks none
# of this, and a second CreateUserPoolDomain for a domain silently moves it to the new pool.
# DescribeUserPoolDomain answers the account's id as AWSAccountId (moto: a random one).

_DOMAIN_PREFIX = re.compile(r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?")
_original_create_domain = cognito.CognitoIdpBackend.create_user_pool_domain


def _create_domain_checked(self, user_pool_id, domain, custom_domain_config=None):
    pool = self.describe_user_pool(user_pool_id)
    if not custom_domain_config:
        if not isinstance(domain, str) or not _DOMAIN_PREFIX.fullmatch(domain):
            raise cognito_exceptions.InvalidParameterException(
                f"1 validation error detected: Value '{domain}' at 'domain' failed to satisfy"
                " constraint: Member must satisfy regular expression pattern:"
                " ^[a-z0-9](?:[a-z0-9\\-]{0,61}[a-z0-9])?$"
            )
        for reserved in ("aws", "amazon", "cognito"):
            if reserved in domain:
                raise cognito_exceptions.InvalidParameterException(
                    f"Domain cannot contain reserved word: {reserved}"
                )
    for account_backends in cognito.cognitoidp_backends.values():
        other = account_backends.get(self.region_name)
        taken = other.user_pool_domains.get(domain) if other is not None else None
        # (moto keeps the domain of a deleted pool: that one no longer counts.)
        if taken is not None and taken.user_pool_id in other.user_pools:
            raise cognito_exceptions.InvalidParameterException(
                "Domain already associated with another user pool"
            )
    if pool.domain is not None:
        raise cognito_exceptions.InvalidParameterException(
            f"User pool {user_pool_id} already has a domain configured."
        )
    return _original_create_domain(self, user_pool_id, domain, custom_domain_config)


cognito.CognitoIdpBackend.create_user_pool_domain = _create_domain_checked

_original_describe_domain = cognito_responses.CognitoIdpResponse.describe_user_pool_domain


def _describe_domain_with_account(self):
    result = _original_describe_domain(self)
    description = result.result.get("DomainDescription")
    if description:
        description["AWSAccountId"] = self.current_account
    return result


cognito_responses.CognitoIdpResponse.describe_user_pool_domain = _describe_domain_with_account


# --- Cognito app clients: OAuth flows and scopes -------------------------------------------
# Cognito refuses an app client whose AllowedOAuthFlows has client_credentials with another
# flow, or without a client secret (InvalidOAuthFlowException; API_CreateUserPoolClient.html:
# "client_credentials ... can't be used with the other flows"), and one whose
# AllowedOAuthScopes names a custom scope that no resource server of the pool defines
# (ScopeDoesNotExistException). moto accepts all of it.

_STANDARD_SCOPES = {"openid", "email", "phone", "profile", "aws.cognito.signin.user.admin"}


class InvalidOAuthFlowException(JsonRESTError):
    def __init__(self, message: str):
        super().__init__("InvalidOAuthFlowException", message)


class ScopeDoesNotExistException(JsonRESTError):
    def __init__(self, message: str):
        super().__init__("ScopeDoesNotExistException", message)


def _check_oauth(pool, has_secret: bool, config: dict) -> None:
    flows = config.get("AllowedOAuthFlows") or []
    if "client_credentials" in flows:
        if len(set(flows)) > 1:
            raise InvalidOAuthFlowException(
                "client_credentials flow can not be selected along with code flow or implicit flow."
            )
        if not has_secret:
            raise InvalidOAuthFlowException(
                "client_credentials flow can not be selected if client does not have a client secret."
            )
    defined = {
        f"{server.identifier}/{scope['ScopeName']}"
        for server in pool.resource_servers.values()
        for scope in server.scopes or []
    }
    for scope in config.get("AllowedOAuthScopes") or []:
        if scope not in _STANDARD_SCOPES and scope not in defined:
            raise ScopeDoesNotExistException(f"Invalid scope requested: {scope}")


_SECRET_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def _client_secret() -> str:
    """A secret of Cognito's pattern `[\\w+]+` (51 characters), with a `+` inside."""
    import secrets

    body = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(50))
    at = 1 + secrets.randbelow(len(body) - 1)
    return f"{body[:at]}+{body[at:]}"


_original_client_init = cognito.CognitoIdpUserPoolClient.__init__


def _client_init(self, *args, **kwargs):
    _original_client_init(self, *args, **kwargs)
    self.secret = _client_secret()


cognito.CognitoIdpUserPoolClient.__init__ = _client_init

_original_create_client = cognito.CognitoIdpBackend.create_user_pool_client


def _create_client_checked(self, user_pool_id, generate_secret, extended_config):
    _check_oauth(
        self.describe_user_pool(user_pool_id), bool(generate_secret), extended_config or {}
    )
    return _original_create_client(self, user_pool_id, generate_secret, extended_config)


cognito.CognitoIdpBackend.create_user_pool_client = _create_client_checked

_original_update_client = cognito.CognitoIdpBackend.update_user_pool_client


def _update_client_checked(self, user_pool_id, client_id, extended_config):
    client = self.describe_user_pool_client(user_pool_id, client_id)
    _check_oauth(
        self.describe_user_pool(user_pool_id), client.generate_secret, extended_config or {}
    )
    return _original_update_client(self, user_pool_id, client_id, extended_config)


cognito.CognitoIdpBackend.update_user_pool_client = _update_client_checked


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


# --- Cognito's token endpoint -------------------------------------------------------------
# Cognito serves `POST https://{prefix}.auth.{region}.amazoncognito.com/oauth2/token` on a
# pool's domain (developerguide token-endpoint.html); moto has no such endpoint. The
# client_credentials grant is emulated here, on `POST {emulator}/oauth2/token`: the caller
# names the Cognito domain it means in X-Forwarded-Host (then the client must belong to
# that domain's pool), or leaves it out (then the client's pool must have a domain).
# Client authentication is client_secret_basic or client_secret_post. The answer is
# Cognito's: 200 {access_token, token_type "Bearer", expires_in} (no id or refresh token
# for this grant), or 400 {"error": invalid_request | invalid_client |
# unauthorized_client | unsupported_grant_type | invalid_scope}. The access token carries
# Cognito's machine-to-machine claims (no username, no aud; sub is the client id) and is
# signed with the pool's key under the kid moto's JWKS publishes, so that it verifies
# through /{poolId}/.well-known/jwks.json like moto's own tokens.

_COGNITO_DOMAIN = re.compile(
    r"([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\.auth\.([a-z0-9-]+)\.amazoncognito\.com"
)
# Seconds per unit of TokenValidityUnits.AccessToken (Cognito's default unit is hours;
# without AccessTokenValidity an access token lasts 60 minutes).
_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


class _TokenError(Exception):
    def __init__(self, error: str, why: str):
        super().__init__(why)
        self.error = error


def _find_client(client_id: str):
    """The (pool, client, backend) of a client id, in any account and region."""
    for account_backends in cognito.cognitoidp_backends.values():
        for backend in list(account_backends.values()):
            for pool in list(backend.user_pools.values()):
                client = pool.clients.get(client_id)
                if client is not None:
                    return pool, client, backend
    return None


def _client_credentials(environ, form: dict) -> tuple:
    import base64

    header = environ.get("HTTP_AUTHORIZATION", "")
    in_body = "client_id" in form or "client_secret" in form
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise _TokenError("invalid_client", "unsupported client authentication")
        if in_body and "client_secret" in form:
            raise _TokenError("invalid_request", "more than one client authentication")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except ValueError:
            raise _TokenError("invalid_request", "malformed Authorization header")
        # Cognito: `Basic Base64Encode(client_id:client_secret)`, no URL-encoding (a
        # secret may hold `+`); split at the first colon.
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise _TokenError("invalid_request", "malformed Authorization header")
        if "client_id" in form and form["client_id"] != client_id:
            raise _TokenError("invalid_request", "client_id differs from the Authorization header")
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret")


def _issue_token(environ) -> dict:
    import hmac
    from joserfc import jwt

    if environ.get("REQUEST_METHOD") != "POST":
        raise _TokenError("invalid_request", "the token endpoint takes POST only")
    content_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise _TokenError(
            "invalid_request", "Content-Type must be application/x-www-form-urlencoded"
        )
    length = int(environ.get("CONTENT_LENGTH") or 0)
    text = environ["wsgi.input"].read(length).decode("utf-8", "replace")
    pairs = parse_qs(text, keep_blank_values=True)
    if any(len(v) > 1 for v in pairs.values()):
        raise _TokenError("invalid_request", "a parameter is repeated")
    form = {k: v[0] for k, v in pairs.items()}
    if not form.get("grant_type"):
        raise _TokenError("invalid_request", "grant_type is missing")

    client_id, secret = _client_credentials(environ, form)
    if not client_id:
        raise _TokenError("invalid_client", "no client authentication")
    found = _find_client(client_id)
    if found is None:
        raise _TokenError("invalid_client", "unknown client")
    pool, client, backend = found
    host = environ.get("HTTP_X_FORWARDED_HOST", "").split(":")[0].strip().lower()
    if host:
        prefix = _COGNITO_DOMAIN.fullmatch(host)
        domain = prefix.group(1) if prefix and prefix.group(2) == pool.region else host
        known = backend.user_pool_domains.get(domain)
        if known is None or known.user_pool_id != pool.id:
            raise _TokenError("invalid_client", "the client is not known at this domain")
    elif pool.domain is None:
        raise _TokenError("invalid_client", "the client's user pool has no domain")
    if not client.generate_secret or secret is None:
        raise _TokenError("invalid_client", "the client has no secret or sent none")
    if not hmac.compare_digest(secret.encode(), client.secret.encode()):
        raise _TokenError("invalid_client", "wrong client secret")

    if form["grant_type"] != "client_credentials":
        raise _TokenError("unsupported_grant_type", "only client_credentials is emulated")
    config = client.extended_config
    if config.get("AllowedOAuthFlowsUserPoolClient") is not True or "client_credentials" not in (
        config.get("AllowedOAuthFlows") or []
    ):
        raise _TokenError(
            "unauthorized_client", "client_credentials is not allowed for this client"
        )

    # Only custom (resource server) scopes can be granted to a client on its own.
    allowed = [s for s in config.get("AllowedOAuthScopes") or [] if "/" in s]
    asked = form.get("scope", "").split()
    if asked:
        unknown = [s for s in asked if s not in allowed]
        if unknown:
            raise _TokenError("invalid_scope", "a scope the client is not allowed")
        scopes = list(dict.fromkeys(asked))
    else:
        scopes = allowed
    if not scopes:
        raise _TokenError("invalid_scope", "the client has no scope to grant")

    validity = config.get("AccessTokenValidity")
    unit = (config.get("TokenValidityUnits") or {}).get("AccessToken") or "hours"
    expires_in = int(validity) * _UNIT_SECONDS[unit] if validity else 3600
    now = int(time.time())
    claims = {
        "sub": client.id,
        "token_use": "access",
        "scope": " ".join(scopes),
        "auth_time": now,
        "iss": f"https://cognito-idp.{pool.region}.amazonaws.com/{pool.id}",
        "exp": now + expires_in,
        "iat": now,
        "version": 2,
        "jti": str(uuid.uuid4()),
        "client_id": client.id,
    }
    key = pool.json_web_key
    token = jwt.encode({"kid": key.kid or "dummy", "alg": "RS256"}, claims, key)
    return {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}


def _serve_token_endpoint() -> None:
    """Wrap moto's WSGI application so that it answers POST /oauth2/token itself."""
    import json

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.__call__

    def serve(self, environ, start_response):
        if environ.get("PATH_INFO") != "/oauth2/token":
            return original(self, environ, start_response)
        try:
            status, answer = "200 OK", _issue_token(environ)
        except _TokenError as refused:
            status, answer = "400 Bad Request", {"error": refused.error}
        body = json.dumps(answer).encode()
        start_response(
            status,
            [
                ("Content-Type", "application/json;charset=UTF-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("Pragma", "no-cache"),
            ],
        )
        return [body]

    DomainDispatcherApplication.__call__ = serve


def _log_requests(path: str) -> None:
    """Wrap moto's WSGI application so that each request is logged before it is served."""
    import io
    import json

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

    _serve_token_endpoint()
    if os.environ.get("EMULATOR_REQUEST_LOG"):
        _log_requests(os.environ["EMULATOR_REQUEST_LOG"])
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--exit-with":
        _exit_with(int(args[1]))
        args = args[2:]
    main(args)
