// A sarama (Debian's 1.22.1) consumer-group member for the interop tests: joins GROUP, reads COUNT
// messages of TOPIC from the oldest offset, prints "partition offset value" per message, commits, leaves.
//
//	saramagroup BOOTSTRAP GROUP TOPIC COUNT
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/Shopify/sarama"
)

type handler struct {
	want int
	got  int
	done chan struct{}
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		fmt.Printf("%d %d %s\n", m.Partition, m.Offset, string(m.Value))
		s.MarkMessage(m, "")
		h.got++
		if h.got == h.want {
			close(h.done)
			return nil
		}
	}
	return nil
}

func main() {
	config := sarama.NewConfig()
	config.Version = sarama.V2_0_0_0
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Group.Session.Timeout = 6 * time.Second
	want, _ := strconv.Atoi(os.Args[4])
	group, err := sarama.NewConsumerGroup([]string{os.Args[1]}, os.Args[2], config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	h := &handler{want: want, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		for {
			if err := group.Consume(ctx, []string{os.Args[3]}, h); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return
			}
			if ctx.Err() != nil {
				return
			}
		}
	}()
	select {
	case <-h.done:
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "timed out")
		os.Exit(1)
	}
	group.Close()
}
