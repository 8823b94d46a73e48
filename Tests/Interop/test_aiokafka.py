"""aiokafka 0.14 (ApiVersions v0, Produce v7, Fetch v11) against the broker."""
import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


def test_produce_and_consume(broker):
    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            results = [await producer.send_and_wait("aio", key=b"k%d" % i, value=b"v%d" % i) for i in range(50)]
        finally:
            await producer.stop()
        assert [r.offset for r in results] == list(range(50))
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
        await consumer.start()
        try:
            partition = TopicPartition("aio", 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            values = []
            while len(values) < 50:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
                values += [m.value for messages in batch.values() for m in messages]
        finally:
            await consumer.stop()
        assert values == [b"v%d" % i for i in range(50)]

    asyncio.run(asyncio.wait_for(run(), 120))
