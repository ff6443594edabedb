package queue

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// BenchmarkEncode measures one request of 2000 samples from 2000 distinct
// node-exporter-like series (9 labels each, one sample per series, as a
// scrape produces), encoded and snappy-compressed into reused buffers:
// ours (labels encoded once per series) against upstream's way (labels
// converted and marshalled again for every request, as QueueManager does).

const benchSamples = 2000

var benchMetricNames = []string{
	"node_cpu_seconds_total", "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
	"node_disk_read_bytes_total", "node_disk_written_bytes_total", "node_filesystem_avail_bytes",
	"node_filesystem_size_bytes", "node_memory_MemAvailable_bytes", "node_schedstat_running_seconds_total",
	"node_softnet_processed_total",
}

var benchModes = []string{"idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice", "guest", "guest_nice"}

// benchSeries returns n distinct series shaped like node-exporter's.
func benchSeries(n int) []labels.Labels {
	out := make([]labels.Labels, n)
	for i := range out {
		node, k := i/100, i%100
		out[i] = labels.FromStrings(
			"__name__", benchMetricNames[k/10],
			"cluster", "prod-eu-west-1",
			"container", "node-exporter",
			"cpu", strconv.Itoa(k%10),
			"instance", fmt.Sprintf("10.%d.%d.%d:9100", node/256, node%256, 17),
			"job", "node-exporter",
			"mode", benchModes[k%10],
			"namespace", "monitoring",
			"pod", fmt.Sprintf("node-exporter-%05x", node*7919),
		)
	}
	return out
}

type benchBatch struct {
	series []labels.Labels
	ts     []int64
	vs     []float64
}

func newBenchBatch() benchBatch {
	r := rand.New(rand.NewPCG(11, 12))
	b := benchBatch{series: benchSeries(benchSamples), ts: make([]int64, benchSamples), vs: make([]float64, benchSamples)}
	for i := range b.ts {
		b.ts[i] = 1_750_000_000_000 + int64(i/100)*37 // one scrape timestamp per target
		b.vs[i] = float64(r.IntN(100_000_000)) / 100
	}
	return b
}

func reportSamples(b *testing.B, compressed int) {
	b.ReportMetric(float64(b.N*benchSamples)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(compressed)/benchSamples, "B/sample")
}

const benchHelp, benchUnit = "Seconds the CPUs spent in each mode.", "seconds"

func BenchmarkEncode(b *testing.B) {
	batch := newBenchBatch()

	b.Run("RW1/ours", func(b *testing.B) {
		pre := make([][]byte, benchSamples)
		for i, ls := range batch.series {
			pre[i] = appendRW1Labels(nil, ls)
		}
		var enc rw1Encoder
		var out []byte
		b.ReportAllocs()
		for b.Loop() {
			enc.Reset()
			for i, lb := range pre {
				enc.AddSample(lb, batch.ts[i], batch.vs[i])
			}
			out = snappy.Encode(out[:cap(out)], enc.Bytes())
		}
		reportSamples(b, len(out))
	})

	b.Run("RW1/ours-nosnappy", func(b *testing.B) {
		pre := make([][]byte, benchSamples)
		for i, ls := range batch.series {
			pre[i] = appendRW1Labels(nil, ls)
		}
		var enc rw1Encoder
		n := 0
		b.ReportAllocs()
		for b.Loop() {
			enc.Reset()
			for i, lb := range pre {
				enc.AddSample(lb, batch.ts[i], batch.vs[i])
			}
			n = len(enc.Bytes())
		}
		reportSamples(b, n)
	})

	b.Run("RW1/upstream", func(b *testing.B) {
		// As QueueManager: pendingData and its label slices reused, labels
		// converted per request (FromLabels), gogo Marshal into a reused
		// proto.Buffer, snappy into a reused buffer.
		pending := make([]prompb.TimeSeries, benchSamples)
		pBuf := proto.NewBuffer(nil)
		var out []byte
		b.ReportAllocs()
		for b.Loop() {
			for i, ls := range batch.series {
				pending[i].Labels = prompb.FromLabels(ls, pending[i].Labels)
				pending[i].Samples = append(pending[i].Samples[:0], prompb.Sample{Value: batch.vs[i], Timestamp: batch.ts[i]})
			}
			pBuf.Reset()
			if err := pBuf.Marshal(&prompb.WriteRequest{Timeseries: pending}); err != nil {
				b.Fatal(err)
			}
			out = snappy.Encode(out[:cap(out)], pBuf.Bytes())
		}
		reportSamples(b, len(out))
	})

	b.Run("RW2/ours", func(b *testing.B) {
		tab := newTestTable()
		in := tab.strings
		_ = in
		pre := make([]*encodedSeries, benchSamples)
		for i, ls := range batch.series {
			pre[i] = internSeries(tab, ls)
			pre[i] = withMeta(tab, pre[i], "counter", benchHelp, benchUnit)
		}
		enc := newRW2Encoder(tab)
		var out []byte
		b.ReportAllocs()
		for b.Loop() {
			enc.Reset()
			for i := range pre {
				enc.AddSample(pre[i], batch.ts[i], batch.vs[i], 0)
			}
			out = snappy.Encode(out[:cap(out)], enc.Bytes())
		}
		reportSamples(b, len(out))
	})

	b.Run("RW2/ours-nosnappy", func(b *testing.B) {
		tab := newTestTable()
		in := tab.strings
		_ = in
		pre := make([]*encodedSeries, benchSamples)
		for i, ls := range batch.series {
			pre[i] = internSeries(tab, ls)
			pre[i] = withMeta(tab, pre[i], "counter", benchHelp, benchUnit)
		}
		enc := newRW2Encoder(tab)
		n := 0
		b.ReportAllocs()
		for b.Loop() {
			enc.Reset()
			for i := range pre {
				enc.AddSample(pre[i], batch.ts[i], batch.vs[i], 0)
			}
			n = len(enc.Bytes())
		}
		reportSamples(b, n)
	})

	b.Run("RW2/upstream", func(b *testing.B) {
		// As QueueManager (populateV2TimeSeries + buildV2WriteRequest): one
		// symbol table Reset per request, strings hashed per sample,
		// OptimizedMarshal into a reused buffer, snappy.
		st := writev2.NewSymbolTable()
		pending := make([]writev2.TimeSeries, benchSamples)
		var pBuf, out []byte
		b.ReportAllocs()
		for b.Loop() {
			st.Reset()
			for i, ls := range batch.series {
				p := &pending[i]
				p.Metadata.Type = writev2.Metadata_METRIC_TYPE_COUNTER
				p.Metadata.HelpRef = st.Symbolize(benchHelp)
				p.Metadata.UnitRef = st.Symbolize(benchUnit)
				p.LabelsRefs = st.SymbolizeLabels(ls, p.LabelsRefs)
				p.Samples = append(p.Samples[:0], writev2.Sample{Value: batch.vs[i], Timestamp: batch.ts[i]})
			}
			req := &writev2.Request{Symbols: st.Symbols(), Timeseries: pending}
			data, err := req.OptimizedMarshal(pBuf)
			if err != nil {
				b.Fatal(err)
			}
			pBuf = data
			out = snappy.Encode(out[:cap(out)], pBuf)
		}
		reportSamples(b, len(out))
	})

	// The same request bodies through both snappy block encoders.
	bodies := map[string][]byte{}
	{
		var enc1 rw1Encoder
		for i, ls := range batch.series {
			enc1.AddSample(appendRW1Labels(nil, ls), batch.ts[i], batch.vs[i])
		}
		bodies["RW1"] = enc1.Bytes()
		tab := newTestTable()
		in := tab.strings
		_ = in
		enc2 := newRW2Encoder(tab)
		for i, ls := range batch.series {
			s := internSeries(tab, ls)
			s = withMeta(tab, s, "counter", benchHelp, benchUnit)
			enc2.AddSample(s, batch.ts[i], batch.vs[i], 0)
		}
		bodies["RW2"] = enc2.Bytes()
	}
	for _, proto := range []string{"RW1", "RW2"} {
		body := bodies[proto]
		b.Run("snappy/"+proto+"/golang", func(b *testing.B) {
			var out []byte
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				out = snappy.Encode(out[:cap(out)], body)
			}
			reportSamples(b, len(out))
		})
		b.Run("snappy/"+proto+"/s2", func(b *testing.B) {
			var out []byte
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				out = s2.EncodeSnappy(out[:cap(out)], body)
			}
			if dec, err := snappy.Decode(nil, out); err != nil || string(dec) != string(body) {
				b.Fatalf("s2.EncodeSnappy output is not a snappy block of the body: %v", err)
			}
			reportSamples(b, len(out))
		})
	}
}
