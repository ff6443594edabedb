package main

// Service discovery mechanisms available in scrape_configs besides
// static_configs: file_sd_configs and http_sd_configs. (Prometheus's
// discovery/install, with DNS, Kubernetes, Consul and the clouds, would
// bring their clients into the module.)
import (
	_ "github.com/prometheus/prometheus/discovery/file"
	_ "github.com/prometheus/prometheus/discovery/http"
)
