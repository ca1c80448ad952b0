"""The site's public REST API (version 1): token-authenticated, for administrator accounts."""
