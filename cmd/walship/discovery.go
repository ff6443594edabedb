//go:build !nosd

package main

// Every service discovery mechanism Prometheus offers in scrape_configs
// (static, file, HTTP, DNS, Kubernetes, Consul, the clouds, ...), as
// Prometheus registers them.
import (
	_ "github.com/prometheus/prometheus/discovery/install"
)
