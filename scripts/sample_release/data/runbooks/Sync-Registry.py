"""Sync-Registry: report which platform images in the customer registry are missing
or differ from the digests pinned by the current release manifest.

Runbook type: Python (runtime environment Python-3.10).
Arguments: <artifact-storage-url> <registry-login-server>
"""

import json
import sys
import urllib.parse
import urllib.request

from azure.identity import ManagedIdentityCredential
from azure.storage.blob import BlobClient

CONTAINER = "artifacts"


def load_manifest(storage_url, credential):
    latest = BlobClient(storage_url, CONTAINER, "releases/latest.json", credential=credential)
    release = json.loads(latest.download_blob().readall())["release"]
    blob = BlobClient(storage_url, CONTAINER, f"releases/{release}/manifest.json", credential=credential)
    return json.loads(blob.download_blob().readall())


def _post_form(url, fields):
    body = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=30) as response:
        return json.loads(response.read())


def acr_refresh_token(login_server, credential):
    """ACR token exchange: an Entra access token for an ACR refresh token."""
    aad = credential.get_token("https://management.azure.com/.default").token
    return _post_form(
        f"https://{login_server}/oauth2/exchange",
        {"grant_type": "access_token", "service": login_server, "access_token": aad},
    )["refresh_token"]


def acr_pull_token(login_server, refresh_token, repository):
    return _post_form(
        f"https://{login_server}/oauth2/token",
        {
            "grant_type": "refresh_token",
            "service": login_server,
            "scope": f"repository:{repository}:pull",
            "refresh_token": refresh_token,
        },
    )["access_token"]


def current_digest(login_server, repository, tag, token):
    request = urllib.request.Request(
        f"https://{login_server}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers.get("Docker-Content-Digest")


def main(argv):
    if len(argv) != 3:
        print("usage: Sync-Registry <artifact-storage-url> <registry-login-server>")
        return 2
    storage_url, login_server = argv[1], argv[2]
    credential = ManagedIdentityCredential()
    manifest = load_manifest(storage_url, credential)
    refresh_token = acr_refresh_token(login_server, credential)

    drift = 0
    for image in manifest["images"]:
        try:
            token = acr_pull_token(login_server, refresh_token, image["repository"])
            digest = current_digest(login_server, image["repository"], image["tag"], token)
        except OSError as err:
            digest = f"unreachable ({err})"
        if digest != image["digest"]:
            drift += 1
            print(f"DRIFT {image['repository']}:{image['tag']}: want {image['digest']}, have {digest}")
    print(f"release {manifest['release']}: {len(manifest['images'])} image(s), {drift} drifted")
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
