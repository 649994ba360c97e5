"""The vendor plugin contract: hook specifications, the manager, built-ins and the test kit."""
