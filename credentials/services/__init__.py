"""Writes of keys, one module per job. Each module's docstring says what it owns:

- `submission`: storing a submitted key, encrypted, and queueing its verification;
- `verification`: the worker's check with the key's provider and what it records;
- `checking`: asking the provider and locking a key to record the answer (shared);
- `lifecycle`: rolls, revocation and the daily re-check;
- `reveal`: a helpdesk lead reading a stored secret;
- `helpdesk`: acknowledging submissions, and the reminders until then;
- `notifications`: the merchant's and the helpdesk's mail about any key event;
- `rotation`: re-encrypting every secret under a new encryption key.

Every service acting for a person starts with `audit.refusals.authorize`.
"""
