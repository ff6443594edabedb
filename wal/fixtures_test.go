package wal_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	uprecord "github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/tombstones"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/wal"
)

var update = flag.Bool("update", false, "regenerate testdata/wal (with upstream's writer) and the fuzz seed files instead of checking them")

// The fixtures live in the module's testdata; see testdata/wal/README.md.
var fxRoot = filepath.Join("..", "testdata", "wal")

const (
	fxSegmentSize = 4 * wal.PageSize
	fxGolden      = "expected.json"
)

// fxClean are the clean logs, written by upstream's writer.
var fxClean = []struct {
	dir      string
	comp     wal.Compression
	segments int  // write until this many segments exist
	ckpt     bool // then checkpoint segments 0-1 and delete them
}{
	{"none", wal.None, 3, false},
	{"snappy", wal.Snappy, 5, true},
	{"zstd", wal.Zstd, 3, false},
}

// fxDamageBase is where the damaged copies come from: the last two
// segments of the clean uncompressed log. The first of them takes the
// damage in the middle of a segment; the second, the torn tails.
const fxDamageBase = "none"

type fxRecipe struct {
	name   string
	damage func(t testing.TB, l *cxLog) string
}

// fxDamages make the damaged copies. Each gets a clean copy of the base
// segments in its directory and returns what it did, in words.
var fxDamages = []fxRecipe{
	{"bad-crc", func(t testing.TB, l *cxLog) string {
		seg := l.segs[0]
		k := l.nearMiddle(t, seg, isFull)
		f := l.spans[k].frags[0]
		l.mutate(t, seg, func(b []byte) []byte { b[f.midPayload()] ^= 0xff; return b })
		return fmt.Sprintf("segment %s: byte %d (in the payload of the full fragment at %d) inverted", wal.SegmentName(seg), f.midPayload(), f.off)
	}},
	{"torn-record", func(t testing.TB, l *cxLog) string {
		seg := l.lastSegment()
		k := l.findLast(t, multiPage)
		f := l.spans[k].frags[1]
		l.mutate(t, seg, func(b []byte) []byte { return b[:f.midPayload()] })
		return fmt.Sprintf("segment %s (the last): cut at %d, in the middle of the second fragment (at %d) of the record starting at %d", wal.SegmentName(seg), f.midPayload(), f.off, l.spans[k].start)
	}},
	{"torn-header", func(t testing.TB, l *cxLog) string {
		seg := l.lastSegment()
		k := l.findLast(t, multiPage)
		f := l.spans[k].frags[1]
		l.mutate(t, seg, func(b []byte) []byte { return b[:f.off+3] })
		return fmt.Sprintf("segment %s (the last): cut at %d, 3 bytes into the header of the second fragment of the record starting at %d", wal.SegmentName(seg), f.off+3, l.spans[k].start)
	}},
	{"zeroed-page", func(t testing.TB, l *cxLog) string {
		seg, page := l.zeroablePage(t)
		l.mutate(t, seg, func(b []byte) []byte { clear(b[page*wal.PageSize : (page+1)*wal.PageSize]); return b })
		return fmt.Sprintf("segment %s: page %d (bytes %d-%d) zeroed; a record starts at its beginning and the next page continues a record that started in it", wal.SegmentName(seg), page, page*wal.PageSize, (page+1)*wal.PageSize-1)
	}},
	{"garbage-page", func(t testing.TB, l *cxLog) string {
		seg := l.segs[0]
		const page = 2
		rng := rand.New(rand.NewSource(20))
		l.mutate(t, seg, func(b []byte) []byte { rng.Read(b[page*wal.PageSize : (page+1)*wal.PageSize]); return b })
		return fmt.Sprintf("segment %s: page %d (bytes %d-%d) overwritten with pseudo-random bytes (math/rand seed 20)", wal.SegmentName(seg), page, page*wal.PageSize, (page+1)*wal.PageSize-1)
	}},
	{"fragment-order", func(t testing.TB, l *cxLog) string {
		seg := l.segs[0]
		k := l.nearMiddle(t, seg, multiPage)
		f := l.spans[k].frags[0]
		l.mutate(t, seg, setHeader(f, f.withType(cxMiddle)))
		return fmt.Sprintf("segment %s: header byte at %d changed from %#02x (first) to %#02x (middle): a middle without a first", wal.SegmentName(seg), f.off, f.hdr, f.withType(cxMiddle))
	}},
	{"padding-nonzero", func(t testing.TB, l *cxLog) string {
		seg := l.segs[0]
		k, end := l.findPaddingIn(t, seg)
		l.mutate(t, seg, func(b []byte) []byte { b[end-1] = 0x01; return b })
		return fmt.Sprintf("segment %s: byte %d, the last of the padding from %d to the page end, set to 0x01", wal.SegmentName(seg), end-1, l.spans[k].end)
	}},
	{"bad-length", func(t testing.TB, l *cxLog) string {
		seg := l.segs[0]
		k := l.nearMiddle(t, seg, isFull)
		f := l.spans[k].frags[0]
		l.mutate(t, seg, func(b []byte) []byte { binary.BigEndian.PutUint16(b[f.off+1:], 0xffff); return b })
		return fmt.Sprintf("segment %s: length of the full fragment at %d set to 65535 (a page holds at most %d)", wal.SegmentName(seg), f.off, wal.MaxFragmentPayload)
	}},
}

// zeroablePage finds a page that, zeroed, reads as padding and is followed
// by a page that continues a record begun in it: a record starts where the
// page starts, and a fragment other than the first starts the next page.
// (Zeroing any other page splices records or hides them without a trace:
// neither upstream's readers nor ours can tell zeros from padding.)
func (l *cxLog) zeroablePage(t testing.TB) (seg int, page int64) {
	t.Helper()
	ok := func(seg int, page int64) bool {
		start, next := page*wal.PageSize, (page+1)*wal.PageSize
		if next+wal.HeaderSize > int64(len(l.data[seg])) {
			return false
		}
		starts, continues := page == 0, false
		for _, s := range l.spans {
			if s.seg != seg {
				continue
			}
			starts = starts || s.start == start
			for _, f := range s.frags[1:] {
				continues = continues || f.off == next
			}
		}
		return starts && continues
	}
	type cand struct {
		seg  int
		page int64
	}
	var cands []cand
	for p := int64(1); p*wal.PageSize < int64(len(l.data[l.segs[0]])); p++ {
		cands = append(cands, cand{l.segs[0], p})
	}
	for _, seg := range l.segs[1:] {
		for p := int64(0); p*wal.PageSize < int64(len(l.data[seg])); p++ {
			cands = append(cands, cand{seg, p})
		}
	}
	cands = append(cands, cand{l.segs[0], 0})
	for _, c := range cands {
		if ok(c.seg, c.page) {
			return c.seg, c.page
		}
	}
	t.Fatal("no page to zero")
	return 0, 0
}

// nearMiddle returns the record of segment seg for which ok holds that
// starts nearest to the middle of the segment.
func (l *cxLog) nearMiddle(t testing.TB, seg int, ok func(cxSpan) bool) int {
	t.Helper()
	mid := int64(len(l.data[seg]) / 2)
	first, end := l.recsIn(seg)
	best := -1
	for i := first; i < end; i++ {
		if ok(l.spans[i]) && (best < 0 || abs64(l.spans[i].start-mid) < abs64(l.spans[best].start-mid)) {
			best = i
		}
	}
	require.GreaterOrEqual(t, best, 0, "no suitable record in segment %d", seg)
	return best
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// findPaddingIn is findPadding for one segment.
func (l *cxLog) findPaddingIn(t testing.TB, seg int) (k int, end int64) {
	t.Helper()
	first, last := l.recsIn(seg)
	for i := first; i < last; i++ {
		next := int64(len(l.data[seg]))
		if i+1 < last {
			next = l.spans[i+1].start
		}
		if next-l.spans[i].end >= 2 && next%wal.PageSize == 0 {
			return i, next
		}
	}
	t.Fatalf("no padding in segment %d", seg)
	return 0, 0
}

// fxResult is what reading one fixture gives; expected.json holds one per
// fixture.
type fxResult struct {
	Dir         string         `json:"dir"`
	Compression string         `json:"compression,omitempty"`
	Damage      string         `json:"damage,omitempty"`
	Segments    []fxSegment    `json:"segments"`
	Records     int            `json:"records"`
	Types       map[string]int `json:"record_types"`
	SHA256      string         `json:"sha256"`
	Error       *fxError       `json:"error,omitempty"`
	AfterSkip   *fxAfterSkip   `json:"after_skip_segment,omitempty"`
}

type fxSegment struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

type fxError struct {
	Segment  int    `json:"segment"`
	Offset   int64  `json:"offset"`
	Sentinel string `json:"sentinel"`
	// What upstream's Reader says about the same log: it stops in the
	// same segment, but its offset is where its parser stood.
	UpstreamOffset  int64  `json:"upstream_offset"`
	UpstreamMessage string `json:"upstream_message"`
}

type fxAfterSkip struct {
	Records int    `json:"records"`
	SHA256  string `json:"sha256"`
}

type fxGoldenFile struct {
	Comment  string     `json:"comment"`
	Fixtures []fxResult `json:"fixtures"`
}

// TestFixtures checks the logs under testdata/wal: our Reader returns
// exactly the records upstream's Reader returns, stops in the same segment
// on the damaged ones and, after SkipSegment, returns what upstream
// returns from the next segment on. The outcome must match expected.json.
// With -update it first writes the fixtures anew with upstream's code.
func TestFixtures(t *testing.T) {
	if *update {
		fxRegenerate(t)
	}

	var results []fxResult
	for _, c := range fxClean {
		results = append(results, fxCheck(t, c.dir, c.comp, ""))
		if c.ckpt {
			cps, err := wal.ListCheckpoints(wal.OS, filepath.Join(fxRoot, c.dir))
			require.NoError(t, err)
			require.Len(t, cps, 1, "checkpoints in %s", c.dir)
			results = append(results, fxCheck(t, filepath.Join(c.dir, cps[0].Name), c.comp, ""))
		}
	}
	for _, d := range fxDamages {
		dir := filepath.Join("damaged", d.name)
		desc := fxDeriveCheck(t, d.name)
		r := fxCheck(t, dir, wal.None, desc)
		require.NotNil(t, r.Error, "%s reads without error", dir)
		results = append(results, r)
	}

	got := fxGoldenFile{
		Comment:  "Written by `go test ./wal -run TestFixtures -update`; see README.md.",
		Fixtures: results,
	}
	golden := filepath.Join(fxRoot, fxGolden)
	if *update {
		b, err := json.MarshalIndent(got, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(golden, append(b, '\n'), 0o666))
		return
	}
	b, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./wal -run TestFixtures -update")
	var want fxGoldenFile
	require.NoError(t, json.Unmarshal(b, &want))
	require.Equal(t, want, got)
}

// fxCheck reads the fixture in dir (relative to fxRoot) with both readers
// and returns what they found.
func fxCheck(t *testing.T, rel string, comp wal.Compression, damage string) fxResult {
	t.Helper()
	dir := filepath.Join(fxRoot, rel)
	res := fxResult{Dir: filepath.ToSlash(rel), Damage: damage, Types: map[string]int{}}
	if damage == "" {
		res.Compression = string(comp)
	}
	refs, err := wal.ListSegments(wal.OS, dir)
	require.NoError(t, err)
	require.NotEmpty(t, refs, "no segments in %s", dir)
	for _, s := range refs {
		st, err := os.Stat(filepath.Join(dir, s.Name))
		require.NoError(t, err)
		res.Segments = append(res.Segments, fxSegment{Name: s.Name, Size: st.Size()})
	}

	// Ours, on through the segments after an error.
	r, err := wal.OpenReader(wal.OS, dir)
	require.NoError(t, err)
	defer r.Close()
	var ours, oursAfter [][]byte
	for r.Next() {
		ours = append(ours, bytes.Clone(r.Record()))
	}
	oursErr := r.Err()
	if oursErr != nil && r.SkipSegment() {
		for r.Next() {
			oursAfter = append(oursAfter, bytes.Clone(r.Record()))
		}
		require.NoError(t, r.Err(), "%s: after SkipSegment", rel)
	}

	// Upstream's, which cannot skip: it is run again from the next segment.
	up, upErr := fxReadUpstream(t, wlog.SegmentRange{Dir: dir, First: -1, Last: -1})
	cxRequireRecords(t, up, ours, rel+": records before the first error, upstream vs ours")
	if upErr == nil {
		require.NoError(t, oursErr, "%s: upstream reads it without error", rel)
	} else {
		require.Error(t, oursErr, "%s: upstream fails with %v", rel, upErr)
	}

	res.Records = len(ours)
	res.SHA256 = fxDigest(ours)
	var dec uprecord.Decoder
	for _, rec := range ours {
		res.Types[dec.Type(rec).String()]++
	}
	if oursErr == nil {
		return res
	}
	var ce *wal.CorruptionError
	require.ErrorAs(t, oursErr, &ce, rel)
	var uce *wlog.CorruptionErr
	require.ErrorAs(t, upErr, &uce, rel)
	require.Equal(t, uce.Segment, ce.Segment, "%s: both readers stop in the same segment (ours: %v; upstream: %v)", rel, oursErr, upErr)
	res.Error = &fxError{
		Segment: ce.Segment, Offset: ce.Offset, Sentinel: cxSentinelName(oursErr),
		UpstreamOffset: uce.Offset, UpstreamMessage: uce.Err.Error(),
	}
	require.NotEmpty(t, res.Error.Sentinel, "%s: %v wraps no sentinel", rel, oursErr)
	if ce.Segment < refs[len(refs)-1].Index {
		upAfter, err := fxReadUpstream(t, wlog.SegmentRange{Dir: dir, First: ce.Segment + 1, Last: -1})
		require.NoError(t, err)
		cxRequireRecords(t, upAfter, oursAfter, rel+": records after the damaged segment, upstream vs ours")
		res.AfterSkip = &fxAfterSkip{Records: len(oursAfter), SHA256: fxDigest(oursAfter)}
	}
	return res
}

func fxReadUpstream(t *testing.T, sr wlog.SegmentRange) ([][]byte, error) {
	t.Helper()
	rc, err := wlog.NewSegmentsRangeReader(sr)
	require.NoError(t, err)
	defer rc.Close()
	r := wlog.NewReader(rc)
	var recs [][]byte
	for r.Next() {
		recs = append(recs, bytes.Clone(r.Record()))
	}
	return recs, r.Err()
}

// fxDigest hashes records, each preceded by its length.
func fxDigest(recs [][]byte) string {
	h := sha256.New()
	for _, r := range recs {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(r)))
		h.Write(n[:])
		h.Write(r)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fxDamageSegments are the segments of the base log the damaged copies hold.
func fxDamageSegments(t testing.TB) []wal.SegmentRef {
	t.Helper()
	refs, err := wal.ListSegments(wal.OS, filepath.Join(fxRoot, fxDamageBase))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(refs), 2)
	return refs[len(refs)-2:]
}

// fxDerive makes the damaged copy name in dir from the clean base.
func fxDerive(t testing.TB, name, dir string) string {
	t.Helper()
	i := slices.IndexFunc(fxDamages, func(d fxRecipe) bool { return d.name == name })
	require.GreaterOrEqual(t, i, 0)
	require.NoError(t, os.MkdirAll(dir, 0o777))
	for _, s := range fxDamageSegments(t) {
		b, err := os.ReadFile(filepath.Join(fxRoot, fxDamageBase, s.Name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, s.Name), b, 0o666))
	}
	return fxDamages[i].damage(t, cxLoad(t, dir, wal.None))
}

// fxDeriveCheck makes the damaged copy name afresh and checks that the one
// in testdata is the same, byte for byte; it returns the description.
func fxDeriveCheck(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	desc := fxDerive(t, name, dir)
	want, err := wal.ListSegments(wal.OS, dir)
	require.NoError(t, err)
	have, err := wal.ListSegments(wal.OS, filepath.Join(fxRoot, "damaged", name))
	require.NoError(t, err)
	require.Equal(t, want, have, "damaged/%s: segments; run with -update", name)
	for _, s := range want {
		a, err := os.ReadFile(filepath.Join(dir, s.Name))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(fxRoot, "damaged", name, s.Name))
		require.NoError(t, err)
		require.True(t, bytes.Equal(a, b), "damaged/%s/%s is not what its recipe makes of the clean log; run with -update", name, s.Name)
	}
	return desc
}

// fxRegenerate writes every fixture anew.
func fxRegenerate(t *testing.T) {
	for _, c := range fxClean {
		dir := filepath.Join(fxRoot, c.dir)
		require.NoError(t, os.RemoveAll(dir))
		fxWrite(t, dir, c.comp, c.segments, c.ckpt)
	}
	require.NoError(t, os.RemoveAll(filepath.Join(fxRoot, "damaged")))
	for _, d := range fxDamages {
		fxDerive(t, d.name, filepath.Join(fxRoot, "damaged", d.name))
	}
}

// fxWrite writes a log of realistic records with upstream's writer and
// encoder until it has the given number of segments, ending with a large
// multi-page record; with ckpt it then checkpoints segments 0-1 with
// upstream's Checkpoint and deletes them, as the server's head does.
func fxWrite(t *testing.T, dir string, comp wal.Compression, segments int, ckpt bool) {
	w, err := wlog.NewSize(nil, nil, dir, fxSegmentSize, upstreamCompression(comp))
	require.NoError(t, err)
	g := newFxGen(1)
	logRecs := func(recs ...[]byte) {
		for _, r := range recs {
			fxMustDecode(t, r)
		}
		require.NoError(t, w.Log(recs...))
	}

	logRecs(g.newSeries(320, "node", 0)...)
	logRecs(g.metadata(g.series))
	ckptMint := int64(-1)
	for round := 0; ; round++ {
		logRecs(g.scrape(round)...)
		if round%4 == 1 {
			logRecs(g.exemplars())
		}
		if round == 6 {
			logRecs(g.tombstones())
		}
		if round == 12 {
			// A new target comes up.
			logRecs(g.newSeries(60, "api", 2)...)
			logRecs(g.metadata(g.series[len(g.series)-60:]))
		}
		_, last, err := wlog.Segments(dir)
		require.NoError(t, err)
		if last == 1 && ckptMint < 0 {
			ckptMint = g.t
		}
		if last >= segments-1 && round >= 16 {
			break
		}
	}
	// Another target: its series come in records of several pages.
	logRecs(g.newSeries(300, "kube-state-metrics", 4)...)

	if ckpt {
		_, last, err := wlog.Segments(dir)
		require.NoError(t, err)
		require.GreaterOrEqual(t, last, 3)
		keep := func(ref chunks.HeadSeriesRef) bool { return ref%3 != 0 }
		_, err = wlog.Checkpoint(slog.New(slog.DiscardHandler), w, 0, 1, keep, ckptMint, false, true)
		require.NoError(t, err)
		require.NoError(t, w.Truncate(2))
	}
	require.NoError(t, w.Close())
}

// fxMustDecode checks with upstream's decoder that a generated record is
// well-formed.
func fxMustDecode(t *testing.T, rec []byte) {
	t.Helper()
	dec := uprecord.NewDecoder(labels.NewSymbolTable(), slog.New(slog.DiscardHandler))
	var err error
	switch typ := dec.Type(rec); typ {
	case uprecord.Series:
		_, err = dec.Series(rec, nil)
	case uprecord.Samples, uprecord.SamplesV2:
		_, err = dec.Samples(rec, nil)
	case uprecord.HistogramSamples, uprecord.HistogramSamplesV2, uprecord.CustomBucketsHistogramSamples:
		_, err = dec.HistogramSamples(rec, nil)
	case uprecord.FloatHistogramSamples, uprecord.FloatHistogramSamplesV2, uprecord.CustomBucketsFloatHistogramSamples:
		_, err = dec.FloatHistogramSamples(rec, nil)
	case uprecord.Exemplars:
		_, err = dec.Exemplars(rec, nil)
	case uprecord.Metadata:
		_, err = dec.Metadata(rec, nil)
	case uprecord.Tombstones:
		_, err = dec.Tombstones(rec, nil)
	default:
		err = fmt.Errorf("unexpected record type %v", typ)
	}
	require.NoError(t, err)
}

// fxGen makes deterministic, realistic content: node-exporter-like and
// API-server-like series, float samples, native histograms (exponential and
// custom buckets, integer and float), exemplars, metadata and tombstones.
type fxGen struct {
	rng    *rand.Rand
	enc    uprecord.Encoder // V1 records
	encV2  uprecord.Encoder // SamplesV2 and the V2 histogram records
	series []fxSeries
	next   chunks.HeadSeriesRef
	t      int64 // timestamp of the last scrape, ms
	start  int64 // process start time: the ST of counters
}

type fxSeries struct {
	ref       chunks.HeadSeriesRef
	lset      labels.Labels
	metric    fxMetric
	value     float64
	histCount uint64
}

type fxMetric struct {
	name, typ, unit, help string
	hist                  int // 0: float; 1: exponential histogram; 2: custom buckets
}

var fxMetrics = []fxMetric{
	{"node_cpu_seconds_total", "counter", "seconds", "Seconds the CPUs spent in each mode.", 0},
	{"node_network_receive_bytes_total", "counter", "bytes", "Network device statistic receive_bytes.", 0},
	{"node_filesystem_avail_bytes", "gauge", "bytes", "Filesystem space available to non-root users in bytes.", 0},
	{"http_requests_total", "counter", "", "Total number of HTTP requests by handler, method and code.", 0},
	{"go_goroutines", "gauge", "", "Number of goroutines that currently exist.", 0},
	{"process_resident_memory_bytes", "gauge", "bytes", "Resident memory size in bytes.", 0},
	{"http_request_duration_seconds", "histogram", "seconds", "Latency of HTTP requests.", 1},
	{"rpc_server_duration_seconds", "histogram", "seconds", "Latency of RPCs, with classic buckets as a native histogram.", 2},
}

func newFxGen(seed int64) *fxGen {
	const start = 1767225600000 // 2026-01-01T00:00:00Z
	return &fxGen{
		rng:   rand.New(rand.NewSource(seed)),
		encV2: uprecord.Encoder{EnableSTStorage: true},
		next:  1,
		t:     start + 5*60*1000,
		start: start,
	}
}

// newSeries makes n series of a new target of job, in records of at most
// 200 series (upstream's head writes one record per append batch).
func (g *fxGen) newSeries(n int, job string, targetNo int) [][]byte {
	modes := []string{"idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"}
	handlers := []string{"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels", "/metrics", "/-/healthy"}
	methods := []string{"GET", "POST"}
	codes := []string{"200", "204", "400", "404", "500", "503"}
	var made []uprecord.RefSeries
	for i := 0; i < n; i++ {
		m := fxMetrics[g.rng.Intn(len(fxMetrics))]
		b := labels.NewScratchBuilder(8)
		b.Add("__name__", m.name)
		b.Add("job", job)
		b.Add("instance", fmt.Sprintf("10.%d.%d.%d:%d", targetNo, i/200, 10+i%200, 9100+targetNo))
		b.Add("cluster", "eu-west-1-prod")
		switch m.name {
		case "node_cpu_seconds_total":
			b.Add("cpu", fmt.Sprint(g.rng.Intn(64)))
			b.Add("mode", modes[g.rng.Intn(len(modes))])
		case "node_network_receive_bytes_total":
			b.Add("device", fmt.Sprintf("eth%d", g.rng.Intn(4)))
		case "node_filesystem_avail_bytes":
			b.Add("device", fmt.Sprintf("/dev/nvme%dn1p%d", g.rng.Intn(4), 1+g.rng.Intn(3)))
			b.Add("fstype", "ext4")
			b.Add("mountpoint", fmt.Sprintf("/var/lib/data%d", g.rng.Intn(16)))
		case "http_requests_total", "http_request_duration_seconds":
			b.Add("handler", handlers[g.rng.Intn(len(handlers))])
			b.Add("method", methods[g.rng.Intn(len(methods))])
			if m.hist == 0 {
				b.Add("code", codes[g.rng.Intn(len(codes))])
			}
		case "rpc_server_duration_seconds":
			b.Add("rpc_service", "walship.v1.Ingest")
			b.Add("rpc_method", []string{"Push", "Query", "Stream"}[g.rng.Intn(3)])
		}
		b.Add("serial", fmt.Sprint(i)) // keeps every label set distinct
		b.Sort()
		s := fxSeries{ref: g.next, lset: b.Labels(), metric: m, value: float64(g.rng.Intn(1000))}
		g.next++
		g.series = append(g.series, s)
		made = append(made, uprecord.RefSeries{Ref: s.ref, Labels: s.lset})
	}
	var recs [][]byte
	for len(made) > 0 {
		n := min(200, len(made))
		recs = append(recs, g.enc.Series(made[:n], nil))
		made = made[n:]
	}
	return recs
}

func (g *fxGen) metadata(ss []fxSeries) []byte {
	types := map[string]uprecord.MetricType{"counter": uprecord.Counter, "gauge": uprecord.Gauge, "histogram": uprecord.HistogramSample}
	var md []uprecord.RefMetadata
	for _, s := range ss {
		md = append(md, uprecord.RefMetadata{Ref: s.ref, Type: uint8(types[s.metric.typ]), Unit: s.metric.unit, Help: s.metric.help})
	}
	return g.enc.Metadata(md, nil)
}

// scrape returns the records of one scrape of every series: floats, then
// histograms. Even rounds use the V1 encodings, odd rounds the V2 ones
// (start timestamps), as a server with st-storage enabled writes them.
func (g *fxGen) scrape(round int) [][]byte {
	g.t += 15_000
	v2 := round%2 == 1
	var samples []uprecord.RefSample
	var hists []uprecord.RefHistogramSample
	var fhists []uprecord.RefFloatHistogramSample
	for i := range g.series {
		s := &g.series[i]
		ts := g.t + int64(g.rng.Intn(500))
		var st int64
		if s.metric.typ != "gauge" {
			st = g.start
		}
		switch s.metric.hist {
		case 0:
			if s.metric.typ == "counter" {
				s.value += float64(g.rng.Intn(5000)) / 100
			} else {
				s.value = math.Round(s.value*(0.9+0.2*g.rng.Float64())*1000) / 1000
			}
			samples = append(samples, uprecord.RefSample{Ref: s.ref, ST: st, T: ts, V: s.value})
		default:
			h := g.histogram(s)
			if round%3 == 2 {
				fhists = append(fhists, uprecord.RefFloatHistogramSample{Ref: s.ref, ST: st, T: ts, FH: h.ToFloat(nil)})
			} else {
				hists = append(hists, uprecord.RefHistogramSample{Ref: s.ref, ST: st, T: ts, H: h})
			}
		}
	}
	enc := &g.enc
	if v2 {
		enc = &g.encV2
	}
	recs := [][]byte{enc.Samples(samples, nil)}
	if len(hists) > 0 {
		rec, custom := enc.HistogramSamples(hists, nil)
		if len(rec) > 0 {
			recs = append(recs, rec)
		}
		if len(custom) > 0 {
			recs = append(recs, enc.CustomBucketsHistogramSamples(custom, nil))
		}
	}
	if len(fhists) > 0 {
		rec, custom := enc.FloatHistogramSamples(fhists, nil)
		if len(rec) > 0 {
			recs = append(recs, rec)
		}
		if len(custom) > 0 {
			recs = append(recs, enc.CustomBucketsFloatHistogramSamples(custom, nil))
		}
	}
	return recs
}

// histogram makes the next cumulative histogram of s: exponential (schema
// 3, positive and negative spans) or custom buckets.
func (g *fxGen) histogram(s *fxSeries) *histogram.Histogram {
	s.histCount += uint64(10 + g.rng.Intn(90))
	spread := func(total uint64, n int) []int64 {
		counts := make([]int64, n)
		left := int64(total)
		for i := range counts {
			c := left / int64(n-i)
			if i < n-1 && c > 0 {
				c = c/2 + g.rng.Int63n(c)
			}
			c = min(c, left)
			counts[i] = c
			left -= c
		}
		deltas := make([]int64, n)
		prev := int64(0)
		for i, c := range counts {
			deltas[i], prev = c-prev, c
		}
		return deltas
	}
	if s.metric.hist == 2 {
		return &histogram.Histogram{
			Schema:          histogram.CustomBucketsSchema,
			Count:           s.histCount,
			Sum:             float64(s.histCount) * 0.173,
			PositiveSpans:   []histogram.Span{{Offset: 0, Length: 6}},
			PositiveBuckets: spread(s.histCount, 6),
			CustomValues:    []float64{0.005, 0.01, 0.05, 0.1, 0.5, 1},
		}
	}
	zero := s.histCount / 20
	neg := s.histCount / 10
	pos := s.histCount - zero - neg
	return &histogram.Histogram{
		Schema:          3,
		ZeroThreshold:   1e-128,
		ZeroCount:       zero,
		Count:           s.histCount,
		Sum:             float64(pos)*0.042 - float64(neg)*0.011,
		PositiveSpans:   []histogram.Span{{Offset: -20, Length: 5}, {Offset: 3, Length: 4}},
		PositiveBuckets: spread(pos, 9),
		NegativeSpans:   []histogram.Span{{Offset: -25, Length: 3}},
		NegativeBuckets: spread(neg, 3),
	}
}

// exemplars returns an exemplar with a trace ID for some counters and
// histograms of the last scrape.
func (g *fxGen) exemplars() []byte {
	var ex []uprecord.RefExemplar
	for _, s := range g.series {
		if s.metric.typ == "gauge" || g.rng.Intn(8) != 0 {
			continue
		}
		id := make([]byte, 16)
		g.rng.Read(id)
		ex = append(ex, uprecord.RefExemplar{
			Ref: s.ref, T: g.t - int64(g.rng.Intn(15_000)), V: float64(g.rng.Intn(2000)) / 1000,
			Labels: labels.FromStrings("trace_id", hex.EncodeToString(id), "span_id", hex.EncodeToString(id[:8])),
		})
	}
	return g.enc.Exemplars(ex, nil)
}

// tombstones deletes a time range of a few series, as an admin API delete does.
func (g *fxGen) tombstones() []byte {
	var stones []tombstones.Stone
	for i := 0; i < len(g.series); i += 37 {
		stones = append(stones, tombstones.Stone{
			Ref:       storage.SeriesRef(g.series[i].ref),
			Intervals: tombstones.Intervals{{Mint: g.t - 3_600_000, Maxt: g.t - 600_000}, {Mint: g.t - 120_000, Maxt: g.t}},
		})
	}
	return g.enc.Tombstones(stones, nil)
}
