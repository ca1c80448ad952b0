"""The failover app's HTTP API: the Command API (XML), the JSON health report and /check_health."""
