package procpod

import (
	"strings"
	"testing"
)

func TestLogTailKeepsTheLastLinesWithinTheLimits(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 100; i++ {
		b.WriteString(strings.Repeat("x", 9) + "\n")
	}
	b.WriteString("verdict: aborted\n")
	tail := logTail([]byte(b.String()), 80, 2048)
	if got := strings.Count(tail, "\n"); got != 80 {
		t.Fatalf("lines: got %d, want 80", got)
	}
	if !strings.HasSuffix(tail, "verdict: aborted\n") {
		t.Fatalf("the last line is missing: %q", tail[len(tail)-40:])
	}
	if short := logTail([]byte(b.String()), 80, 20); short != "xx\nverdict: aborted\n" {
		t.Fatalf("byte limit: got %q", short)
	}
}
