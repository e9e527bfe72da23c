"""Host-tier tests: the extension inside a real A1111 (skipped unless ZS2_WEBUI is set)."""
