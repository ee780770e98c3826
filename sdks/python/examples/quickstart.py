"""The five-minute quick start of docs/sdk-python.md: two users chat through your backend.

    export TERN_URL=http://127.0.0.1:8080 TERN_APP_KEY=ak_... TERN_APP_SECRET=sk_...
    python examples/quickstart.py
"""

import os

import tern

client = tern.Client(os.environ["TERN_URL"], os.environ["TERN_APP_KEY"], os.environ["TERN_APP_SECRET"])

# 1. Users: create or update them (ids are yours).
client.upsert_users([{"id": "alice", "name": "Alice"}, {"id": "bob", "name": "Bob"}])

# 2. Alice and Bob chat. A client_msg_id makes a send idempotent: sending it again
#    (a retry after a timeout) answers with the first message instead of storing a second.
hi = client.send_text("alice", {"user": "bob"}, "Hi Bob!", client_msg_id="quickstart-1")
client.send_text("bob", {"user": "alice"}, "Hi Alice!", client_msg_id="quickstart-2")
again = client.send_text("alice", {"user": "bob"}, "Hi Bob!", client_msg_id="quickstart-1")
assert again.msg_id == hi.msg_id

# 3. Read the conversation, every page of it, oldest first.
for message in client.iter_history(hi.conversation_id):
    print(f"{message.seq} {message.from_}: {message.content}")

# 4. Alice's conversation list, with unread counts (Bob's answer is new to her).
for conversation in client.iter_conversations("alice"):
    print(f"{conversation.conversation_id}: {conversation.unread} unread")

# 5. A token for Bob's app to log in with (the SDKs' `auth`), minted locally: no round trip.
token = tern.mint_user_token(os.environ["TERN_APP_KEY"], os.environ["TERN_APP_SECRET"], "bob", ttl_seconds=3600)
print("token for bob:", token[:24] + "...")

# 6. Errors carry the stable code of docs/errors.md.
try:
    client.get_user("nobody-here")
except tern.NotFoundError as e:
    print("expected:", e.code)

client.close()
