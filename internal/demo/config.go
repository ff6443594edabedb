package demo

import (
	_ "embed"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"text/template"
)

// configTemplate is the demo configuration; see Config.
//
//go:embed config.yml.tmpl
var configTemplate string

var configTmpl = template.Must(template.New("config.yml").
	Funcs(template.FuncMap{"yaml": yamlString}).
	Parse(configTemplate))

// Config returns the demo's Prometheus configuration (YAML): a global
// scrape_interval of 5s, one scrape job "walship" scraping selfAddr/metrics
// (selfAddr is host:port, the agent's own web listen address), and one
// remote_write named "demo" to receiverURL (the URL Receiver.Start returns)
// over Remote-Write 2.0 with a batch_send_deadline of 1s. It is accepted by
// upstream's config.Load, agent mode included.
func Config(receiverURL, selfAddr string) (string, error) {
	u, err := url.Parse(receiverURL)
	if err != nil {
		return "", fmt.Errorf("demo: receiver URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("demo: receiver URL %q: want http(s)://host[:port]/path", receiverURL)
	}
	if _, _, err := net.SplitHostPort(selfAddr); err != nil {
		return "", fmt.Errorf("demo: self address: %w", err)
	}
	var b strings.Builder
	err = configTmpl.Execute(&b, struct{ ReceiverURL, SelfAddr string }{receiverURL, selfAddr})
	if err != nil {
		return "", fmt.Errorf("demo: render config: %w", err)
	}
	return b.String(), nil
}

// yamlString quotes s as a YAML double-quoted scalar. Go's escapes (\", \\,
// \x.., \u...., \U........) are all valid in YAML double-quoted strings.
func yamlString(s string) string { return strconv.Quote(s) }
