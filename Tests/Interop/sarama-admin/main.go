// sarama's ClusterAdmin (Debian's 1.22.1) against a broker, for the interop tests: describes and alters
// a topic's configs, grows it, deletes records and describes the broker, printing one line per result.
//
//	saramaadmin BOOTSTRAP TOPIC
package main

import (
	"fmt"
	"os"

	"github.com/Shopify/sarama"
)

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
	os.Exit(1)
}

func config(admin sarama.ClusterAdmin, kind sarama.ConfigResourceType, name string, key string) {
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: kind, Name: name, ConfigNames: []string{key}})
	if err != nil {
		fail("DescribeConfig", err)
	}
	for _, entry := range entries {
		fmt.Printf("config %s %s=%s default=%t readonly=%t\n", name, entry.Name, entry.Value, entry.Default, entry.ReadOnly)
	}
}

func main() {
	bootstrap, topic := os.Args[1], os.Args[2]
	conf := sarama.NewConfig()
	conf.Version = sarama.V2_0_0_0
	admin, err := sarama.NewClusterAdmin([]string{bootstrap}, conf)
	if err != nil {
		fail("NewClusterAdmin", err)
	}
	defer admin.Close()

	config(admin, sarama.TopicResource, topic, "retention.ms")
	retention := "7200000"
	if err := admin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": &retention}, false); err != nil {
		fail("AlterConfig", err)
	}
	config(admin, sarama.TopicResource, topic, "retention.ms")
	if err := admin.CreatePartitions(topic, 3, nil, false); err != nil {
		fail("CreatePartitions", err)
	}
	fmt.Println("partitions 3")
	if err := admin.DeleteRecords(topic, map[int32]int64{0: 2}); err != nil {
		fail("DeleteRecords", err)
	}
	fmt.Println("deleted below 2")
	// sarama 1.22's BrokerResource is 5 (its ACL numbering); DescribeConfigs' broker type is 4, as
	// Kafka's own brokers require, so the number is given here.
	config(admin, sarama.ConfigResourceType(4), "1", "log.retention.ms")
}
