"""Data sync: the backup pulls the primary's site settings, users and reports.

- changelog: the primary logs every write to synced data (the cursor for incremental syncs)
- codec: how each synced model becomes a JSON record and back
- stream: the primary's side, an NDJSON change stream sealed with an HMAC
- receive: the backup's side, download within the bandwidth limit, verify, apply atomically
"""
