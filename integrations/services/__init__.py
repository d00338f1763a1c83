"""Writes of the integration side, one module per job:

- `accounts`: service accounts, their tokens (create, roll, revoke) and webhook endpoints,
  every change audited;
- `tokens`: who a bearer token is, checked on every API call;
- `events`: the events a key's changes cause, written to the webhook outbox;
- `delivery`: sending the outbox's deliveries, signed, with retries.
"""
