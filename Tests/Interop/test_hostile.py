"""Garbage on one connection never disturbs the broker or its other clients."""
import socket
import struct

from confluent_kafka import Producer


def send_and_expect_close(port, payload):
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.settimeout(10)
        s.sendall(payload)
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass


def test_garbage_closes_only_that_connection(broker):
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce("steady", value=b"before")
    assert producer.flush(30) == 0
    send_and_expect_close(broker.port, b"\x16\x03\x01\x02\x00" + b"\x01" * 100)  # a TLS hello
    send_and_expect_close(broker.port, struct.pack(">i", -5))
    send_and_expect_close(broker.port, struct.pack(">i", 0x7FFFFFF0))
    send_and_expect_close(broker.port, struct.pack(">ihhi", 8, 12345, 0, 1))  # unknown API key
    producer.produce("steady", value=b"after")
    assert producer.flush(30) == 0
