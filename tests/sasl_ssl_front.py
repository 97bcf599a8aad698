"""A SASL_SSL front for a plaintext Kafka broker, for the event-stream SASL tests.

tansu 0.6.0 cannot stand in for a SASL_SSL Kafka instance here: its broker never uses the TLS
acceptor it builds, offers no SASL PLAIN, and with memory storage no SCRAM user can be created
once authentication is required. This front does what the instance's listener would: it
terminates TLS, answers `SaslHandshake` and `SaslAuthenticate` itself (PLAIN, and SCRAM-SHA-512
per RFC 5802/7677 with the server proving the password too), and only then relays the
connection to the broker, byte for byte. Every other Kafka request is the broker's.

Kafka framing used: a request is an int32 size, then api_key (int16), api_version (int16),
correlation_id (int32), client_id (int16-length string) and, for flexible versions, tagged
fields; a response is the size, the correlation id (plus tagged fields when flexible), the body.
"""

import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct
import threading

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
SASL_AUTHENTICATION_FAILED = 58
UNSUPPORTED_SASL_MECHANISM = 33
MECHANISMS = ["PLAIN", "SCRAM-SHA-512"]
ITERATIONS = 4096


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_frame(sock):
    size = struct.unpack(">i", read_exact(sock, 4))[0]
    return read_exact(sock, size)


def uvarint(data, at):
    value, shift = 0, 0
    while True:
        b = data[at]
        at += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, at
        shift += 7


def put_uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def skip_tags(data, at):
    count, at = uvarint(data, at)
    for _ in range(count):
        _, at = uvarint(data, at)
        size, at = uvarint(data, at)
        at += size
    return at


class Request:
    def __init__(self, frame):
        self.api_key, self.version, self.correlation = struct.unpack(">hhi", frame[:8])
        client_len = struct.unpack(">h", frame[8:10])[0]
        at = 10 + max(client_len, 0)
        self.flexible = self.api_key == SASL_AUTHENTICATE and self.version >= 2
        if self.flexible:
            at = skip_tags(frame, at)
        self.body = frame[at:]

    def respond(self, sock, body):
        header = struct.pack(">i", self.correlation) + (b"\x00" if self.flexible else b"")
        payload = header + body
        sock.sendall(struct.pack(">i", len(payload)) + payload)


def string(s):
    raw = s.encode()
    return struct.pack(">h", len(raw)) + raw


class Scram:
    """The server side of one SCRAM-SHA-512 exchange."""

    def __init__(self, users):
        self.users = users
        self.step = 0

    def next(self, message):
        text = message.decode()
        if self.step == 0:
            self.step = 1
            self.client_first_bare = text.split(",", 2)[2]
            fields = dict(f.split("=", 1) for f in self.client_first_bare.split(","))
            self.user, client_nonce = fields["n"], fields["r"]
            self.salt = os.urandom(16)
            self.nonce = client_nonce + base64.b64encode(os.urandom(18)).decode()
            self.server_first = "r=%s,s=%s,i=%d" % (self.nonce, base64.b64encode(self.salt).decode(), ITERATIONS)
            return self.server_first.encode(), False
        final_without_proof, _, proof = text.rpartition(",p=")
        fields = dict(f.split("=", 1) for f in final_without_proof.split(","))
        password = self.users.get(self.user)
        if password is None or fields.get("r") != self.nonce:
            raise PermissionError("unknown user or nonce")
        salted = hashlib.pbkdf2_hmac("sha512", password.encode(), self.salt, ITERATIONS)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha512).digest()
        stored_key = hashlib.sha512(client_key).digest()
        auth_message = ",".join([self.client_first_bare, self.server_first, final_without_proof]).encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha512).digest()
        recovered = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature))
        if hashlib.sha512(recovered).digest() != stored_key:
            raise PermissionError("wrong password")
        server_key = hmac.new(salted, b"Server Key", hashlib.sha512).digest()
        server_signature = hmac.new(server_key, auth_message, hashlib.sha512).digest()
        return ("v=" + base64.b64encode(server_signature).decode()).encode(), True


class SaslSslFront:
    """Listens on 127.0.0.1:`port` with TLS (`cert`, `key`), authenticates `users`
    ({name: password}) and relays authenticated connections to `backend` (host, port)."""

    def __init__(self, port, backend, cert, key, users):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.backend, self.users = backend, users
        self.failures = 0
        self.listener = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(client,), daemon=True).start()

    def session(self, client):
        upstream = None
        try:
            secure = self.context.wrap_socket(client, server_side=True)
            upstream = socket.create_connection(self.backend)
            if self.authenticate(secure, upstream):
                back = threading.Thread(target=pump, args=(upstream, secure), daemon=True)
                back.start()
                pump(secure, upstream)
                back.join()
                secure.close()
                upstream.close()
                return
        except (OSError, ssl.SSLError, ConnectionError, ValueError, KeyError):
            pass
        for s in (client, upstream):
            if s:
                s.close()

    def authenticate(self, secure, upstream):
        mechanism, scram = None, None
        while True:
            frame = read_frame(secure)
            request = Request(frame)
            if request.api_key == API_VERSIONS:
                upstream.sendall(struct.pack(">i", len(frame)) + frame)
                response = read_frame(upstream)
                secure.sendall(struct.pack(">i", len(response)) + response)
            elif request.api_key == SASL_HANDSHAKE:
                mechanism = request.body[2:2 + struct.unpack(">h", request.body[:2])[0]].decode()
                error = 0 if mechanism in MECHANISMS else UNSUPPORTED_SASL_MECHANISM
                body = struct.pack(">h", error) + struct.pack(">i", len(MECHANISMS)) + b"".join(map(string, MECHANISMS))
                request.respond(secure, body)
                if error:
                    return False
                scram = Scram(self.users) if mechanism.startswith("SCRAM") else None
            elif request.api_key == SASL_AUTHENTICATE and mechanism:
                if request.flexible:
                    size, at = uvarint(request.body, 0)
                    token = request.body[at:at + size - 1]
                else:
                    token = request.body[4:4 + struct.unpack(">i", request.body[:4])[0]]
                try:
                    if scram:
                        reply, done = scram.next(token)
                    else:
                        _, user, password = token.split(b"\0")
                        if self.users.get(user.decode()) != password.decode():
                            raise PermissionError("wrong password")
                        reply, done = b"", True
                    self.answer(request, secure, 0, None, reply)
                    if done:
                        return True
                except PermissionError as e:
                    self.failures += 1
                    self.answer(request, secure, SASL_AUTHENTICATION_FAILED, "Authentication failed: %s" % e, b"")
                    return False
            else:
                return False

    @staticmethod
    def answer(request, sock, error, message, token):
        if request.flexible:
            text = b"\x00" if message is None else put_uvarint(len(message) + 1) + message.encode()
            body = struct.pack(">h", error) + text + put_uvarint(len(token) + 1) + token + struct.pack(">q", 0) + b"\x00"
        else:
            text = struct.pack(">h", -1) if message is None else string(message)
            body = struct.pack(">h", error) + text + struct.pack(">i", len(token)) + token
            if request.version >= 1:
                body += struct.pack(">q", 0)
        request.respond(sock, body)

    def close(self):
        self.listener.close()


def pump(src, dst):
    """Copies src to dst until either ends, then shuts both down at the socket level (which wakes
    the other direction's pump) without closing them: closing a TLS socket while the other
    thread is inside it frees its SSL object under that thread (a segfault seen once); the
    session closes both after both pumps ended."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                socket.socket.shutdown(s, socket.SHUT_RDWR)  # not SSLSocket.shutdown, which drops its SSL object
            except OSError:
                pass
