"""Purge_Staging: delete staging blobs older than a retention window.

Runbook type: Python (runtime environment Python-3.10).
Arguments: <storage-account-url> <container> [retention-days]
"""

import datetime
import sys

from azure.identity import ManagedIdentityCredential
from azure.storage.blob import ContainerClient

PREFIX = "staging/"


def main(argv):
    if len(argv) < 3:
        print("usage: Purge_Staging <storage-account-url> <container> [retention-days]")
        return 2
    account_url, container = argv[1], argv[2]
    retention_days = int(argv[3]) if len(argv) > 3 else 7
    cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=retention_days)

    client = ContainerClient(account_url, container, credential=ManagedIdentityCredential())
    purged = 0
    for blob in client.list_blobs(name_starts_with=PREFIX):
        if blob.last_modified < cutoff:
            client.delete_blob(blob.name, delete_snapshots="include")
            purged += 1
    print(f"purged {purged} staging blob(s) older than {retention_days} day(s) from {container}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
