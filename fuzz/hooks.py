"""Schemathesis hooks: log in as the fuzzing role and send its token with every request."""

import os

import requests
import schemathesis

BASE_URL = os.environ["FUZZ_BASE_URL"]
USERNAME = os.environ["FUZZ_USERNAME"]
PASSWORD = os.environ["FUZZ_PASSWORD"]


# Re-login on a 401: a generated POST /logout revokes the token in use.
@schemathesis.auth(refresh_interval=300, retry_on=[401])
class RoleTokens:
    def get(self, case, context):
        response = requests.post(
            f"{BASE_URL}/login", json={"username": USERNAME, "password": PASSWORD}, timeout=10
        )
        response.raise_for_status()
        return response.json()

    def set(self, case, data, context):
        # /refresh takes the refresh token; everything else the access token.
        kind = "refresh_token" if case.operation.path == "/refresh" else "access_token"
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data[kind]}"
