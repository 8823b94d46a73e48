"""A zero-work stand-in broker for measuring a consumer's own ceiling.

librdkafka's mock cluster keeps only about 5 MB per partition, so it cannot show how fast a consumer
reads millions of records when the broker costs nothing. This module does it another way:

  1. `Recorder` sits between the consumer and a real broker (which must advertise the recorder's
     address) and keeps every response frame, keyed by the request frame it answered with the
     correlation id blanked out;
  2. `Replayer` then listens on the same address, in place of the broker, and answers each request
     with the recorded response (its correlation id patched in). It decodes nothing and reads no
     files: the consumer gets the very bytes the broker sent, as fast as loopback carries them.

Identical requests answered differently (a Metadata refresh, a fetch at the end of the log) get the
recorded answers in order, the last one repeated. A request never seen while recording is not
answered, so a run that strays from the recording times out and fails instead of measuring
something else. Loopback only.
"""
import asyncio
import collections
import struct
import threading

LOOPBACK = "127.0.0.1"


async def read_frame(reader):
    """One length-prefixed Kafka frame (the length included), or None at end of stream."""
    try:
        prefix = await reader.readexactly(4)
        return prefix + await reader.readexactly(struct.unpack(">i", prefix)[0])
    except asyncio.IncompleteReadError:
        return None


def request_key(frame):
    """The request with its correlation id (bytes 8..12: after length, api key, version) blanked."""
    return frame[:8] + b"\0\0\0\0" + frame[12:]


def with_correlation_id(response, request):
    return response[:4] + request[8:12] + response[8:]


class _LoopThread:
    """An asyncio loop on its own thread, so the load generator can run in the foreground."""

    def __init__(self, port):
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = None

    def start(self, handler):
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(handler, LOOPBACK, self.port), self.loop).result(10)

    def stop(self):
        async def close():
            self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Recorder(_LoopThread):
    """A proxy from `port` to a broker on `upstream_port` that records every exchange."""

    def __init__(self, port, upstream_port):
        super().__init__(port)
        self.upstream_port = upstream_port
        self.recording = False  # set while the run worth replaying goes through
        self.responses = collections.defaultdict(list)  # request key -> responses, in order

    def __enter__(self):
        self.start(self._proxy)
        return self

    def __exit__(self, *_):
        self.stop()

    async def _proxy(self, client_reader, client_writer):
        upstream_reader, upstream_writer = await asyncio.open_connection(LOOPBACK, self.upstream_port)
        try:
            while (request := await read_frame(client_reader)) is not None:
                upstream_writer.write(request)
                response = await read_frame(upstream_reader)
                if response is None:
                    break
                if self.recording:
                    self.responses[request_key(request)].append(response)
                client_writer.write(response)
                await client_writer.drain()
        except (asyncio.CancelledError, ConnectionError):
            pass  # stopped, or the client went away
        finally:
            upstream_writer.close()
            client_writer.close()


class Replayer(_LoopThread):
    """Answers requests on `port` from a Recorder's responses, one request at a time per connection
    (as a broker does)."""

    def __init__(self, port, responses):
        super().__init__(port)
        self.responses = responses
        self.unanswered = 0

    def __enter__(self):
        self.start(self._serve)
        return self

    def __exit__(self, *_):
        self.stop()

    async def _serve(self, reader, writer):
        served = collections.Counter()
        try:
            while (request := await read_frame(reader)) is not None:
                key = request_key(request)
                recorded = self.responses.get(key)
                if not recorded:
                    self.unanswered += 1
                    await asyncio.sleep(3600)  # strayed from the recording: let the run time out
                response = recorded[min(served[key], len(recorded) - 1)]
                served[key] += 1
                writer.write(with_correlation_id(response, request))
                await writer.drain()
        except (asyncio.CancelledError, ConnectionError):
            pass  # stopped, or the client went away
        finally:
            writer.close()
