"""Fidelity tests of scripts/emulator.py: what it changes from moto behaves as AWS does.

Run with `.venv/bin/python scripts/emulator_test.py` (scripts/test does). One emulator,
started on a free port for the whole suite, serves every test; each test makes its own
resources (unique names), so the tests do not depend on one another.
"""

import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

import boto3
from botocore.exceptions import ClientError
from joserfc import jwk, jwt
from joserfc.errors import BadSignatureError

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/runtime"
NETWORK = {"networkMode": "PUBLIC"}
_emulator: subprocess.Popen | None = None
_log_file: str = ""
ENDPOINT = ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setUpModule() -> None:
    global _emulator, _log_file, ENDPOINT
    port = _free_port()
    ENDPOINT = f"http://127.0.0.1:{port}"
    fd, _log_file = tempfile.mkstemp(prefix="emulator-requests-", suffix=".jsonl")
    os.close(fd)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "emulator.py")
    env = dict(os.environ, EMULATOR_REQUEST_LOG=_log_file)
    _emulator = subprocess.Popen(
        [sys.executable, script, "--exit-with", str(os.getpid()), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Wait until it answers (a startup bound, not an assertion on speed).
    deadline = time.monotonic() + 120
    while True:
        if _emulator.poll() is not None:
            raise RuntimeError(f"the emulator exited with {_emulator.returncode}")
        try:
            urllib.request.urlopen(f"{ENDPOINT}/moto-api/", timeout=2).read()
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError("the emulator never answered")
            time.sleep(0.2)


def tearDownModule() -> None:
    if _emulator is not None:
        _emulator.terminate()
        _emulator.wait()
    if _log_file:
        os.unlink(_log_file)


def client(service: str):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def artifact(image: str) -> dict:
    return {"containerConfiguration": {"containerUri": image}}


class AwsErrors(unittest.TestCase):
    def assertError(self, code: str, call, *args, **kwargs) -> ClientError:
        with self.assertRaises(ClientError) as caught:
            call(*args, **kwargs)
        self.assertEqual(caught.exception.response["Error"]["Code"], code, caught.exception)
        return caught.exception


class RuntimeBase(AwsErrors):
    @classmethod
    def setUpClass(cls) -> None:
        cls.ac = client("bedrock-agentcore-control")

    def make_runtime(self, versions: int = 1) -> str:
        """A runtime with `versions` versions; version N runs image img:N, and only
        version 1 has environment variables."""
        runtime_id = self.ac.create_agent_runtime(
            agentRuntimeName=unique("rt_"),
            agentRuntimeArtifact=artifact("img:1"),
            roleArn=ROLE,
            networkConfiguration=NETWORK,
            environmentVariables={"ONLY_IN": "v1"},
            description="first",
        )["agentRuntimeId"]
        for n in range(2, versions + 1):
            self.update(runtime_id, f"img:{n}")
        return runtime_id

    def update(self, runtime_id: str, image: str) -> str:
        return self.ac.update_agent_runtime(
            agentRuntimeId=runtime_id,
            agentRuntimeArtifact=artifact(image),
            roleArn=ROLE,
            networkConfiguration=NETWORK,
        )["agentRuntimeVersion"]

    def endpoint(self, runtime_id: str, name: str) -> dict:
        return self.ac.get_agent_runtime_endpoint(agentRuntimeId=runtime_id, endpointName=name)

    def listed(self, runtime_id: str) -> dict:
        summaries = self.ac.list_agent_runtime_endpoints(agentRuntimeId=runtime_id)
        return {e["name"]: e for e in summaries["runtimeEndpoints"]}


class RuntimeVersions(RuntimeBase):
    def test_get_version_answers_that_versions_snapshot(self) -> None:
        runtime_id = self.make_runtime(versions=2)
        v1 = self.ac.get_agent_runtime(agentRuntimeId=runtime_id, agentRuntimeVersion="1")
        self.assertEqual(v1["agentRuntimeVersion"], "1")
        self.assertEqual(v1["agentRuntimeArtifact"], artifact("img:1"))
        self.assertEqual(v1["environmentVariables"], {"ONLY_IN": "v1"})
        self.assertEqual(v1["description"], "first")
        self.assertEqual(v1["status"], "READY")
        v2 = self.ac.get_agent_runtime(agentRuntimeId=runtime_id, agentRuntimeVersion="2")
        self.assertEqual(v2["agentRuntimeArtifact"], artifact("img:2"))
        self.assertNotIn("environmentVariables", v2)
        latest = self.ac.get_agent_runtime(agentRuntimeId=runtime_id)
        self.assertEqual(latest["agentRuntimeVersion"], "2")
        self.assertEqual(latest["agentRuntimeArtifact"], artifact("img:2"))

    def test_get_unknown_version_is_not_found(self) -> None:
        runtime_id = self.make_runtime()
        self.assertError(
            "ResourceNotFoundException",
            self.ac.get_agent_runtime,
            agentRuntimeId=runtime_id,
            agentRuntimeVersion="2",
        )

    def test_delete_version_leaves_the_runtime_and_the_other_versions(self) -> None:
        runtime_id = self.make_runtime(versions=3)
        answer = self.ac.delete_agent_runtime(agentRuntimeId=runtime_id, agentRuntimeVersion="1")
        self.assertEqual(answer["agentRuntimeVersion"], "1")
        latest = self.ac.get_agent_runtime(agentRuntimeId=runtime_id)
        self.assertEqual(latest["agentRuntimeVersion"], "3")
        listed = self.ac.list_agent_runtime_versions(agentRuntimeId=runtime_id)["agentRuntimes"]
        self.assertEqual([v["agentRuntimeVersion"] for v in listed], ["3", "2"])
        self.assertEqual({v["status"] for v in listed}, {"READY"})
        self.assertEqual(
            self.ac.get_agent_runtime(agentRuntimeId=runtime_id, agentRuntimeVersion="2")[
                "agentRuntimeArtifact"
            ],
            artifact("img:2"),
        )
        self.assertError(
            "ResourceNotFoundException",
            self.ac.get_agent_runtime,
            agentRuntimeId=runtime_id,
            agentRuntimeVersion="1",
        )
        self.assertError(
            "ResourceNotFoundException",
            self.ac.delete_agent_runtime,
            agentRuntimeId=runtime_id,
            agentRuntimeVersion="1",
        )

    def test_delete_version_repeated_with_its_client_token_is_answered_again(self) -> None:
        runtime_id = self.make_runtime(versions=2)
        token = str(uuid.uuid4())
        for _ in range(2):
            answer = self.ac.delete_agent_runtime(
                agentRuntimeId=runtime_id, agentRuntimeVersion="1", clientToken=token
            )
            self.assertEqual(answer["agentRuntimeVersion"], "1")
        self.assertError(
            "ResourceNotFoundException",
            self.ac.delete_agent_runtime,
            agentRuntimeId=runtime_id,
            agentRuntimeVersion="1",
            clientToken=str(uuid.uuid4()),
        )

    def test_delete_latest_version_is_a_conflict(self) -> None:
        runtime_id = self.make_runtime(versions=2)
        self.assertError(
            "ConflictException",
            self.ac.delete_agent_runtime,
            agentRuntimeId=runtime_id,
            agentRuntimeVersion="2",
        )
        self.assertEqual(
            len(self.ac.list_agent_runtime_versions(agentRuntimeId=runtime_id)["agentRuntimes"]), 2
        )

    def test_delete_version_an_endpoint_serves_is_a_conflict(self) -> None:
        runtime_id = self.make_runtime(versions=3)
        self.ac.create_agent_runtime_endpoint(
            agentRuntimeId=runtime_id, name="pinned", agentRuntimeVersion="1"
        )
        self.assertError(
            "ConflictException",
            self.ac.delete_agent_runtime,
            agentRuntimeId=runtime_id,
            agentRuntimeVersion="1",
        )
        # Moved to version 2: version 1 is free, version 2 is now served.
        self.ac.update_agent_runtime_endpoint(
            agentRuntimeId=runtime_id, endpointName="pinned", agentRuntimeVersion="2"
        )
        self.assertError(
            "ConflictException",
            self.ac.delete_agent_runtime,
            agentRuntimeId=runtime_id,
            agentRuntimeVersion="2",
        )
        self.ac.delete_agent_runtime(agentRuntimeId=runtime_id, agentRuntimeVersion="1")

    def test_delete_without_version_removes_the_runtime_and_its_endpoints(self) -> None:
        runtime_id = self.make_runtime(versions=2)
        self.ac.create_agent_runtime_endpoint(agentRuntimeId=runtime_id, name="prod")
        self.ac.delete_agent_runtime(agentRuntimeId=runtime_id)
        self.assertError(
            "ResourceNotFoundException", self.ac.get_agent_runtime, agentRuntimeId=runtime_id
        )
        self.assertError("ResourceNotFoundException", self.endpoint, runtime_id, "prod")
        self.assertError("ResourceNotFoundException", self.endpoint, runtime_id, "DEFAULT")
        self.assertError(
            "ResourceNotFoundException",
            self.ac.list_agent_runtime_endpoints,
            agentRuntimeId=runtime_id,
        )


class RuntimeEndpoints(RuntimeBase):
    def test_create_answers_creating_then_ready_on_the_latest_version(self) -> None:
        runtime_id = self.make_runtime(versions=2)
        created = self.ac.create_agent_runtime_endpoint(agentRuntimeId=runtime_id, name="prod")
        self.assertEqual(created["status"], "CREATING")
        self.assertEqual(created["targetVersion"], "2")
        arn = (
            f"arn:aws:bedrock-agentcore:{REGION}:123456789012:runtime/{runtime_id}"
            "/runtime-endpoint/prod"
        )
        self.assertEqual(created["agentRuntimeEndpointArn"], arn)
        got = self.endpoint(runtime_id, "prod")
        self.assertEqual(got["status"], "READY")
        self.assertEqual((got["liveVersion"], got["targetVersion"]), ("2", "2"))
        self.assertEqual(got["agentRuntimeEndpointArn"], arn)
        self.assertEqual(
            got["agentRuntimeArn"],
            f"arn:aws:bedrock-agentcore:{REGION}:123456789012:runtime/{runtime_id}",
        )

    def test_update_answers_updating_then_ready_on_the_target_version(self) -> None:
        runtime_id = self.make_runtime(versions=2)
        self.ac.create_agent_runtime_endpoint(
            agentRuntimeId=runtime_id, name="prod", agentRuntimeVersion="1"
        )
        self.assertEqual(self.endpoint(runtime_id, "prod")["liveVersion"], "1")
        updated = self.ac.update_agent_runtime_endpoint(
            agentRuntimeId=runtime_id, endpointName="prod", agentRuntimeVersion="2"
        )
        self.assertEqual(updated["status"], "UPDATING")
        self.assertEqual((updated["liveVersion"], updated["targetVersion"]), ("1", "2"))
        got = self.endpoint(runtime_id, "prod")
        self.assertEqual(got["status"], "READY")
        self.assertEqual((got["liveVersion"], got["targetVersion"]), ("2", "2"))

    def test_list_gives_each_endpoints_versions_and_the_default_endpoint(self) -> None:
        runtime_id = self.make_runtime(versions=2)
        self.ac.create_agent_runtime_endpoint(
            agentRuntimeId=runtime_id, name="old", agentRuntimeVersion="1"
        )
        listed = self.listed(runtime_id)
        self.assertEqual(set(listed), {"DEFAULT", "old"})
        self.assertEqual((listed["old"]["liveVersion"], listed["old"]["targetVersion"]), ("1", "1"))
        self.assertEqual(
            (listed["DEFAULT"]["liveVersion"], listed["DEFAULT"]["targetVersion"]), ("2", "2")
        )
        self.assertTrue(
            listed["DEFAULT"]["agentRuntimeEndpointArn"].endswith("/runtime-endpoint/DEFAULT")
        )

    def test_default_follows_every_update_and_a_pinned_endpoint_stays(self) -> None:
        runtime_id = self.make_runtime()
        self.ac.create_agent_runtime_endpoint(
            agentRuntimeId=runtime_id, name="pinned", agentRuntimeVersion="1"
        )
        default = self.endpoint(runtime_id, "DEFAULT")
        self.assertEqual((default["status"], default["liveVersion"]), ("READY", "1"))
        self.assertEqual(self.update(runtime_id, "img:2"), "2")
        self.assertEqual(self.endpoint(runtime_id, "DEFAULT")["liveVersion"], "2")
        self.assertEqual(self.listed(runtime_id)["DEFAULT"]["liveVersion"], "2")
        pinned = self.endpoint(runtime_id, "pinned")
        self.assertEqual((pinned["liveVersion"], pinned["targetVersion"]), ("1", "1"))
        self.assertEqual(self.listed(runtime_id)["pinned"]["liveVersion"], "1")

    def test_default_cannot_be_updated_or_deleted(self) -> None:
        runtime_id = self.make_runtime(versions=2)
        self.assertError(
            "ValidationException",
            self.ac.update_agent_runtime_endpoint,
            agentRuntimeId=runtime_id,
            endpointName="DEFAULT",
            agentRuntimeVersion="1",
        )
        self.assertError(
            "ValidationException",
            self.ac.delete_agent_runtime_endpoint,
            agentRuntimeId=runtime_id,
            endpointName="DEFAULT",
        )
        self.assertEqual(self.endpoint(runtime_id, "DEFAULT")["liveVersion"], "2")

    def test_a_version_that_does_not_exist_is_refused(self) -> None:
        runtime_id = self.make_runtime()
        self.assertError(
            "ValidationException",
            self.ac.create_agent_runtime_endpoint,
            agentRuntimeId=runtime_id,
            name="prod",
            agentRuntimeVersion="2",
        )
        self.ac.create_agent_runtime_endpoint(agentRuntimeId=runtime_id, name="prod")
        self.assertError(
            "ValidationException",
            self.ac.update_agent_runtime_endpoint,
            agentRuntimeId=runtime_id,
            endpointName="prod",
            agentRuntimeVersion="7",
        )
        self.assertEqual(self.endpoint(runtime_id, "prod")["liveVersion"], "1")

    def test_names_are_validated_and_unique(self) -> None:
        runtime_id = self.make_runtime()
        for bad in ["with-dash", "1starts_with_digit", "_underscore", "x" * 49]:
            with self.subTest(name=bad):
                self.assertError(
                    "ValidationException",
                    self.ac.create_agent_runtime_endpoint,
                    agentRuntimeId=runtime_id,
                    name=bad,
                )
        self.ac.create_agent_runtime_endpoint(agentRuntimeId=runtime_id, name="a" + "b" * 47)
        self.ac.create_agent_runtime_endpoint(agentRuntimeId=runtime_id, name="Prod_2")
        for taken in ["Prod_2", "DEFAULT"]:
            with self.subTest(name=taken):
                self.assertError(
                    "ConflictException",
                    self.ac.create_agent_runtime_endpoint,
                    agentRuntimeId=runtime_id,
                    name=taken,
                )

    def test_delete_endpoint(self) -> None:
        runtime_id = self.make_runtime()
        self.ac.create_agent_runtime_endpoint(agentRuntimeId=runtime_id, name="gone")
        self.ac.delete_agent_runtime_endpoint(agentRuntimeId=runtime_id, endpointName="gone")
        self.assertError("ResourceNotFoundException", self.endpoint, runtime_id, "gone")
        self.assertEqual(set(self.listed(runtime_id)), {"DEFAULT"})


class CognitoBase(AwsErrors):
    @classmethod
    def setUpClass(cls) -> None:
        cls.idp = client("cognito-idp")

    def make_pool(self) -> str:
        return self.idp.create_user_pool(PoolName=unique("pool"))["UserPool"]["Id"]

    def make_api(self, pool_id: str, identifier: str = "api", scopes=("read", "write")) -> None:
        self.idp.create_resource_server(
            UserPoolId=pool_id,
            Identifier=identifier,
            Name=identifier,
            Scopes=[{"ScopeName": s, "ScopeDescription": s} for s in scopes],
        )


class CognitoResourceServers(CognitoBase):
    def test_update_replaces_name_and_scopes(self) -> None:
        pool_id = self.make_pool()
        self.make_api(pool_id)
        answer = self.idp.update_resource_server(
            UserPoolId=pool_id,
            Identifier="api",
            Name="renamed",
            Scopes=[{"ScopeName": "admin", "ScopeDescription": "all"}],
        )["ResourceServer"]
        self.assertEqual(answer["Name"], "renamed")
        described = self.idp.describe_resource_server(UserPoolId=pool_id, Identifier="api")[
            "ResourceServer"
        ]
        self.assertEqual(described["Name"], "renamed")
        self.assertEqual(described["Scopes"], [{"ScopeName": "admin", "ScopeDescription": "all"}])
        self.assertError(
            "ResourceNotFoundException",
            self.idp.update_resource_server,
            UserPoolId=pool_id,
            Identifier="nope",
            Name="x",
        )

    def test_delete(self) -> None:
        pool_id = self.make_pool()
        self.make_api(pool_id)
        self.make_api(pool_id, identifier="other")
        self.idp.delete_resource_server(UserPoolId=pool_id, Identifier="api")
        self.assertError(
            "ResourceNotFoundException",
            self.idp.describe_resource_server,
            UserPoolId=pool_id,
            Identifier="api",
        )
        listed = self.idp.list_resource_servers(UserPoolId=pool_id, MaxResults=10)[
            "ResourceServers"
        ]
        self.assertEqual([s["Identifier"] for s in listed], ["other"])
        self.assertError(
            "ResourceNotFoundException",
            self.idp.delete_resource_server,
            UserPoolId=pool_id,
            Identifier="api",
        )


class CognitoDomains(CognitoBase):
    def test_prefix_rules(self) -> None:
        pool_id = self.make_pool()
        tail = uuid.uuid4().hex[:8]
        for bad in [
            f"Upper{tail}",
            f"-lead{tail}",
            f"trail{tail}-",
            f"under_{tail}",
            "x" * 64,
            f"my-aws-{tail}",
            f"amazon{tail}",
            f"x{tail}cognito",
        ]:
            with self.subTest(domain=bad):
                self.assertError(
                    "InvalidParameterException",
                    self.idp.create_user_pool_domain,
                    UserPoolId=pool_id,
                    Domain=bad,
                )
        self.idp.create_user_pool_domain(UserPoolId=pool_id, Domain=f"ok-{tail}")

    def test_unique_and_one_per_pool(self) -> None:
        first, second = self.make_pool(), self.make_pool()
        domain = unique("dom-")
        self.idp.create_user_pool_domain(UserPoolId=first, Domain=domain)
        refused = self.assertError(
            "InvalidParameterException",
            self.idp.create_user_pool_domain,
            UserPoolId=second,
            Domain=domain,
        )
        self.assertIn(
            "Domain already associated with another user pool",
            refused.response["Error"]["Message"],
        )
        self.assertError(
            "InvalidParameterException",
            self.idp.create_user_pool_domain,
            UserPoolId=first,
            Domain=unique("dom-"),
        )
        described = self.idp.describe_user_pool_domain(Domain=domain)["DomainDescription"]
        self.assertEqual(described["UserPoolId"], first)

    def test_describe_and_delete(self) -> None:
        pool_id = self.make_pool()
        domain = unique("dom-")
        self.idp.create_user_pool_domain(UserPoolId=pool_id, Domain=domain)
        described = self.idp.describe_user_pool_domain(Domain=domain)["DomainDescription"]
        self.assertEqual(
            (described["UserPoolId"], described["Domain"], described["Status"]),
            (pool_id, domain, "ACTIVE"),
        )
        self.assertEqual(described["AWSAccountId"], "123456789012")
        self.assertEqual(
            self.idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Domain"], domain
        )
        self.assertEqual(
            self.idp.describe_user_pool_domain(Domain=unique("none-"))["DomainDescription"], {}
        )
        self.idp.delete_user_pool_domain(UserPoolId=pool_id, Domain=domain)
        self.assertEqual(self.idp.describe_user_pool_domain(Domain=domain)["DomainDescription"], {})
        # Free again, for this pool or another.
        self.idp.create_user_pool_domain(UserPoolId=self.make_pool(), Domain=domain)


class CognitoClients(CognitoBase):
    def m2m(self, pool_id: str, **overrides):
        config = {
            "UserPoolId": pool_id,
            "ClientName": unique("client"),
            "GenerateSecret": True,
            "AllowedOAuthFlows": ["client_credentials"],
            "AllowedOAuthFlowsUserPoolClient": True,
            "AllowedOAuthScopes": ["api/read"],
        }
        config.update(overrides)
        return self.idp.create_user_pool_client(**config)["UserPoolClient"]

    def test_client_credentials_alone_and_with_a_secret(self) -> None:
        pool_id = self.make_pool()
        self.make_api(pool_id)
        self.assertError(
            "InvalidOAuthFlowException",
            self.m2m,
            pool_id,
            AllowedOAuthFlows=["client_credentials", "code"],
            CallbackURLs=["https://example.com/cb"],
        )
        self.assertError("InvalidOAuthFlowException", self.m2m, pool_id, GenerateSecret=False)
        made = self.m2m(pool_id)
        self.assertEqual(made["AllowedOAuthFlows"], ["client_credentials"])
        public = self.idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName=unique("public"), GenerateSecret=False
        )["UserPoolClient"]
        self.assertError(
            "InvalidOAuthFlowException",
            self.idp.update_user_pool_client,
            UserPoolId=pool_id,
            ClientId=public["ClientId"],
            AllowedOAuthFlows=["client_credentials"],
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthScopes=["api/read"],
        )

    def test_custom_scopes_must_exist(self) -> None:
        pool_id = self.make_pool()
        self.make_api(pool_id)
        self.assertError(
            "ScopeDoesNotExistException", self.m2m, pool_id, AllowedOAuthScopes=["api/admin"]
        )
        self.assertError(
            "ScopeDoesNotExistException", self.m2m, pool_id, AllowedOAuthScopes=["other/read"]
        )
        made = self.m2m(pool_id, AllowedOAuthScopes=["api/read", "api/write"])
        self.assertError(
            "ScopeDoesNotExistException",
            self.idp.update_user_pool_client,
            UserPoolId=pool_id,
            ClientId=made["ClientId"],
            AllowedOAuthFlows=["client_credentials"],
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthScopes=["api/delete"],
        )
        # Standard scopes need no resource server.
        self.idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=unique("web"),
            AllowedOAuthFlows=["code"],
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthScopes=[
                "openid",
                "email",
                "phone",
                "profile",
                "aws.cognito.signin.user.admin",
            ],
            CallbackURLs=["https://example.com/cb"],
        )


def post_token(body, headers=None, method="POST", content_type="application/x-www-form-urlencoded"):
    """POST /oauth2/token: (HTTP status, JSON answer)."""
    data = urllib.parse.urlencode(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(f"{ENDPOINT}/oauth2/token", data=data, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def basic(client_id: str, secret: str) -> dict:
    pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


GRANT = {"grant_type": "client_credentials"}


class TokenEndpoint(CognitoBase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        idp = cls.idp
        cls.pool = idp.create_user_pool(PoolName=unique("m2m"))["UserPool"]["Id"]
        idp.create_resource_server(
            UserPoolId=cls.pool,
            Identifier="api",
            Name="api",
            Scopes=[{"ScopeName": s, "ScopeDescription": s} for s in ("read", "write", "admin")],
        )
        cls.domain = unique("m2m-")
        idp.create_user_pool_domain(UserPoolId=cls.pool, Domain=cls.domain)
        cls.host = f"{cls.domain}.auth.{REGION}.amazoncognito.com"

        def make(**extra):
            config = {
                "UserPoolId": cls.pool,
                "ClientName": unique("c"),
                "GenerateSecret": True,
                "AllowedOAuthFlows": ["client_credentials"],
                "AllowedOAuthFlowsUserPoolClient": True,
                "AllowedOAuthScopes": ["api/read", "api/write"],
            }
            config.update(extra)
            return idp.create_user_pool_client(**config)["UserPoolClient"]

        cls.make = staticmethod(make)
        cls.m2m = make(AccessTokenValidity=5, TokenValidityUnits={"AccessToken": "minutes"})
        cls.auth = basic(cls.m2m["ClientId"], cls.m2m["ClientSecret"])
        jwks_url = f"{ENDPOINT}/{cls.pool}/.well-known/jwks.json"
        with urllib.request.urlopen(jwks_url) as answer:
            cls.jwks = json.loads(answer.read())
        cls.keys = jwk.KeySet.import_key_set(cls.jwks)

    def grant(self, body=None, headers=None) -> dict:
        status, answer = post_token(body or GRANT, headers or self.auth)
        self.assertEqual(status, 200, answer)
        return answer

    def claims(self, answer: dict) -> dict:
        token = jwt.decode(answer["access_token"], self.keys)
        self.assertEqual(token.header["alg"], "RS256")
        self.assertIn(token.header["kid"], [k["kid"] for k in self.jwks["keys"]])
        return token.claims

    def refused(self, error: str, body=None, headers=None, **kwargs) -> None:
        status, answer = post_token(GRANT if body is None else body, headers, **kwargs)
        self.assertEqual((status, answer), (400, {"error": error}))

    def test_success_with_basic_auth_has_cognitos_claims(self) -> None:
        before = int(time.time())
        answer = self.grant()
        self.assertEqual(set(answer), {"access_token", "token_type", "expires_in"})
        self.assertEqual(answer["token_type"], "Bearer")
        self.assertEqual(answer["expires_in"], 300)
        claims = self.claims(answer)
        client_id = self.m2m["ClientId"]
        self.assertEqual(claims["sub"], client_id)
        self.assertEqual(claims["client_id"], client_id)
        self.assertEqual(claims["token_use"], "access")
        self.assertEqual(claims["scope"], "api/read api/write")
        self.assertEqual(claims["iss"], f"https://cognito-idp.{REGION}.amazonaws.com/{self.pool}")
        self.assertEqual(claims["version"], 2)
        self.assertEqual(claims["exp"] - claims["iat"], 300)
        self.assertGreaterEqual(claims["iat"], before)
        self.assertEqual(claims["auth_time"], claims["iat"])
        self.assertTrue(claims["jti"])
        self.assertNotIn("username", claims)
        self.assertNotIn("aud", claims)
        self.assertNotEqual(self.claims(self.grant())["jti"], claims["jti"])

    def test_signature_is_checked_by_the_verification(self) -> None:
        # The decode above would refuse a token signed with another key: tamper with
        # the claims and the signature no longer matches.
        head, payload, signature = self.grant()["access_token"].split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["scope"] = "api/admin"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        with self.assertRaises(BadSignatureError):
            jwt.decode(f"{head}.{forged}.{signature}", self.keys)

    def test_basic_credentials_are_taken_verbatim(self) -> None:
        # Cognito: `Basic Base64Encode(client_id:client_secret)`, no URL-encoding; its
        # secrets match [\w+]+, and the emulator's always hold a `+`.
        client_id, secret = self.m2m["ClientId"], self.m2m["ClientSecret"]
        self.assertRegex(secret, r"^[A-Za-z0-9_+]+$")
        self.assertIn("+", secret)
        self.assertEqual(self.claims(self.grant(headers=basic(client_id, secret)))["sub"], client_id)
        # URL-encoded, the secret is another one (`%2B` is not `+`), and a `+` read as a
        # space would be too.
        self.refused("invalid_client", headers=basic(client_id, urllib.parse.quote_plus(secret)))
        self.refused("invalid_client", headers=basic(client_id, secret.replace("+", " ")))
        # The secret is split from the id at the first colon only.
        self.refused("invalid_client", headers=basic(client_id, secret + ":x"))

    def test_success_with_credentials_in_the_body(self) -> None:
        body = dict(GRANT, client_id=self.m2m["ClientId"], client_secret=self.m2m["ClientSecret"])
        status, answer = post_token(body)
        self.assertEqual(status, 200, answer)
        self.assertEqual(self.claims(answer)["client_id"], self.m2m["ClientId"])

    def test_scope_subset(self) -> None:
        claims = self.claims(self.grant(dict(GRANT, scope="api/write")))
        self.assertEqual(claims["scope"], "api/write")
        claims = self.claims(self.grant(dict(GRANT, scope="api/write api/read")))
        self.assertEqual(set(claims["scope"].split()), {"api/read", "api/write"})

    def test_forwarded_host_must_be_the_clients_pool_domain(self) -> None:
        self.grant(headers=dict(self.auth, **{"X-Forwarded-Host": self.host}))
        other_pool = self.make_pool()
        other_domain = unique("other-")
        self.idp.create_user_pool_domain(UserPoolId=other_pool, Domain=other_domain)
        self.refused(
            "invalid_client",
            headers=dict(
                self.auth, **{"X-Forwarded-Host": f"{other_domain}.auth.{REGION}.amazoncognito.com"}
            ),
        )
        self.refused(
            "invalid_client",
            headers=dict(
                self.auth,
                **{"X-Forwarded-Host": f"{unique('none-')}.auth.{REGION}.amazoncognito.com"},
            ),
        )

    def test_a_pool_without_domain_has_no_token_endpoint(self) -> None:
        pool_id = self.make_pool()
        self.make_api(pool_id)
        made = self.idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=unique("c"),
            GenerateSecret=True,
            AllowedOAuthFlows=["client_credentials"],
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthScopes=["api/read"],
        )["UserPoolClient"]
        self.refused("invalid_client", headers=basic(made["ClientId"], made["ClientSecret"]))

    def test_validity_units(self) -> None:
        for extra, seconds in [
            ({}, 3600),
            ({"AccessTokenValidity": 2}, 7200),
            ({"AccessTokenValidity": 90, "TokenValidityUnits": {"AccessToken": "seconds"}}, 90),
            ({"AccessTokenValidity": 1, "TokenValidityUnits": {"AccessToken": "days"}}, 86400),
        ]:
            with self.subTest(extra=extra):
                made = self.make(**extra)
                answer = self.grant(headers=basic(made["ClientId"], made["ClientSecret"]))
                self.assertEqual(answer["expires_in"], seconds)
                claims = self.claims(answer)
                self.assertEqual(claims["exp"] - claims["iat"], seconds)

    def test_invalid_request(self) -> None:
        self.refused("invalid_request", body={}, headers=self.auth)
        self.refused("invalid_request", headers=self.auth, content_type="application/json")
        self.refused("invalid_request", headers=self.auth, content_type="text/plain")
        self.refused(
            "invalid_request", body=b"grant_type=client_credentials&grant_type=x", headers=self.auth
        )
        self.refused("invalid_request", headers={"Authorization": "Basic %%%not-base64"})
        self.refused(
            "invalid_request",
            headers={"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()},
        )
        status, answer = post_token(None, self.auth, method="GET", content_type=None)
        self.assertEqual((status, answer), (400, {"error": "invalid_request"}))

    def test_invalid_client(self) -> None:
        client_id, secret = self.m2m["ClientId"], self.m2m["ClientSecret"]
        self.refused("invalid_client", headers=basic("unknownclient", secret))
        self.refused("invalid_client", headers=basic(client_id, secret + "x"))
        self.refused("invalid_client", headers=basic(client_id, ""))
        self.refused("invalid_client", body=dict(GRANT, client_id=client_id))
        self.refused("invalid_client", body=dict(GRANT, client_id=client_id, client_secret="wrong"))
        self.refused("invalid_client", body=GRANT, headers={})
        public = self.idp.create_user_pool_client(
            UserPoolId=self.pool, ClientName=unique("public"), GenerateSecret=False
        )["UserPoolClient"]
        self.refused("invalid_client", body=dict(GRANT, client_id=public["ClientId"]))

    def test_unauthorized_client(self) -> None:
        code_flow = self.make(AllowedOAuthFlows=["code"], CallbackURLs=["https://example.com/cb"])
        self.refused(
            "unauthorized_client", headers=basic(code_flow["ClientId"], code_flow["ClientSecret"])
        )
        no_oauth = self.make(AllowedOAuthFlowsUserPoolClient=False)
        self.refused(
            "unauthorized_client", headers=basic(no_oauth["ClientId"], no_oauth["ClientSecret"])
        )

    def test_unsupported_grant_type(self) -> None:
        self.refused("unsupported_grant_type", body={"grant_type": "password"}, headers=self.auth)
        self.refused(
            "unsupported_grant_type", body={"grant_type": "authorization_code"}, headers=self.auth
        )

    def test_invalid_scope(self) -> None:
        # api/admin exists but this client is not allowed it; openid is not granted to
        # a client on its own.
        for scope in ["api/admin", "api/read api/admin", "openid", "nope/read"]:
            with self.subTest(scope=scope):
                self.refused("invalid_scope", body=dict(GRANT, scope=scope), headers=self.auth)

    def test_request_log_names_the_call_without_the_secret(self) -> None:
        self.grant()
        with open(_log_file) as log:
            lines = [json.loads(line) for line in log]
        self.assertTrue(any(line["path"] == "/oauth2/token" for line in lines))
        self.assertTrue(any(line["operation"] == "CreateUserPool" for line in lines))
        with open(_log_file) as log:
            self.assertNotIn(self.m2m["ClientSecret"], log.read())


if __name__ == "__main__":
    unittest.main(verbosity=1)
