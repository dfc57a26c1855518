"""An SMTP server for the integration tests (aiosmtpd), run as: smtp_sink.py PORT FOLDER.

Saves every message it accepts, as received, to FOLDER/<n>-<uuid>.eml, where n counts the
messages in the order they were accepted (so names sort in order of arrival). Refuses recipients whose
address starts with "bounce" for good (550) and those starting with "busy" for now (451).
Prints "ready" once it listens; stops when its standard input closes or it is killed.
"""

import os
import sys
import uuid

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, folder):
        self.folder = folder
        self.accepted = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("bounce"):
            return "550 5.1.1 No such user here"
        if address.lower().startswith("busy"):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.accepted += 1
        name = "%06d-%s" % (self.accepted, uuid.uuid4().hex)
        partial = os.path.join(self.folder, "." + name + ".partial")
        with open(partial, "wb") as f:
            f.write(envelope.original_content)
        os.rename(partial, os.path.join(self.folder, name + ".eml"))
        return "250 Message accepted for delivery"


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    controller = Controller(Sink(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
