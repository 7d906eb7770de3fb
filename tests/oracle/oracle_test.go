package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ask sends one request through the protocol loop and decodes the one answer line.
func ask(t *testing.T, req string) map[string]any {
	t.Helper()
	var out bytes.Buffer
	if err := serve(strings.NewReader(req+"\n"), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one answer line for %s, got %q", req, out.String())
	}
	var ans map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ans); err != nil {
		t.Fatalf("answer is not JSON: %q: %v", lines[0], err)
	}
	return ans
}

func mustOK(t *testing.T, ans map[string]any) {
	t.Helper()
	if ans["ok"] != true {
		t.Fatalf("want ok, got %v", ans)
	}
}

// Examples from Argo's docs/features/analysis.md "Handling Metric Results" and docs/analysis/*.md.
func TestEvaluateDocumentedExamples(t *testing.T) {
	cases := []struct {
		result, resultType, success, failure string
		phase                                string
		err                                  any
	}{
		// "Empty array / Prometheus": the first is Successful, the second Failed.
		{`[]`, "prometheus", `len(result) == 0 || result[0] >= 0.95`, "", "Successful", nil},
		{`[]`, "prometheus", `len(result) > 0 && result[0] >= 0.95`, "", "Failed", nil},
		// Without the guard, indexing an empty result is an evaluation error, and Argo replaces the
		// expression's own message with its "no data" message.
		{`[]`, "prometheus", `result[0] >= 0.95`, "", "Error",
			`could not evaluate successCondition "result[0] >= 0.95": metric result is nil or empty: no data returned from the metric provider`},
		{`[0.99]`, "prometheus", `result[0] >= 0.95`, "", "Successful", nil},
		// "NaN and Infinity": NaN is Successful, then Inconclusive (neither condition holds).
		{`"NaN"`, "prometheus", `isNaN(result) || result >= 0.95`, "", "Successful", nil},
		{`"NaN"`, "prometheus", `result >= 0.95`, `result < 0.95`, "Inconclusive", nil},
		// Datadog: an empty query gives a nil *float64; default() handles it.
		{`null`, "datadog", `default(result, 0) < 0.05`, "", "Successful", nil},
		{`0.5`, "datadog", `default(result, 0) < 0.05`, "", "Failed", nil},
		// Web: asInt/asFloat convert strings.
		{`"42"`, "json", `asInt(result) == 42`, "", "Successful", nil},
		{`"0.5"`, "json", `asFloat(result) < 1`, "", "Successful", nil},
		// No conditions at all: always Successful.
		{`"anything"`, "json", "", "", "Successful", nil},
	}
	for _, c := range cases {
		req := map[string]any{"op": "evaluate", "result": json.RawMessage(c.result), "resultType": c.resultType,
			"successCondition": c.success, "failureCondition": c.failure}
		b, _ := json.Marshal(req)
		ans := ask(t, string(b))
		mustOK(t, ans)
		if ans["phase"] != c.phase || ans["error"] != c.err {
			t.Errorf("%s on %s (success %q, failure %q): got phase %v error %v, want %v %v",
				c.resultType, c.result, c.success, c.failure, ans["phase"], ans["error"], c.phase, c.err)
		}
	}
}

func rs(name string, replicas, available int) string {
	return fmt.Sprintf(`{"metadata":{"name":%q,"labels":{"rollouts-pod-template-hash":%q}},"spec":{"replicas":%d},"status":{"availableReplicas":%d}}`,
		name, name, replicas, available)
}

// The examples in the doc comment of CalculateReplicaCountsForBasicCanary (utils/replicaset/canary.go),
// all but one as written there.
func TestBasicCanaryCountsDocumentedExamples(t *testing.T) {
	cases := []struct {
		replicas, weight, newRS, stableRS int
		maxUnavailable, maxSurge          int
		wantNew, wantStable               float64
	}{
		{10, 10, 0, 10, 1, 1, 1, 9},
		{10, 30, 0, 10, 0, 3, 3, 10},
		{10, 30, 0, 10, 5, 0, 0, 7},
		// The comment says "newRS 1 stableRS 9"; the code keeps stable at 10: with a surge of 1,
		// 1 of 11 (9.1%) is nearer 5% than 1 of 10, so the desired stable count is 10.
		{10, 5, 0, 10, 1, 1, 1, 10},
		{1, 5, 0, 1, 0, 1, 1, 1},
		{1, 95, 0, 1, 0, 1, 1, 1},
		// Argo's own unit tests (utils/replicaset/canary_test.go, "Do not round past maxSurge with
		// uneven setWeight divisor"): stable first goes down to 9, and only then the canary comes up.
		{10, 5, 0, 10, 1, 0, 0, 9},
		{10, 5, 0, 9, 1, 0, 1, 9},
	}
	for _, c := range cases {
		req := fmt.Sprintf(`{"op":"basicCanaryCounts","rollout":{"spec":{"replicas":%d,"strategy":{"canary":{"maxUnavailable":%d,"maxSurge":%d,"steps":[{"setWeight":%d}]}}},"status":{"stableRS":"stable","currentPodHash":"new","currentStepIndex":0}},"newRS":%s,"stableRS":%s}`,
			c.replicas, c.maxUnavailable, c.maxSurge, c.weight, rs("new", c.newRS, c.newRS), rs("stable", c.stableRS, c.stableRS))
		ans := ask(t, req)
		mustOK(t, ans)
		if ans["new"] != c.wantNew || ans["stable"] != c.wantStable {
			t.Errorf("replicas %d weight %d unavailable %d surge %d: got new %v stable %v, want %v %v",
				c.replicas, c.weight, c.maxUnavailable, c.maxSurge, ans["new"], ans["stable"], c.wantNew, c.wantStable)
		}
	}
}

func TestCanaryHelpers(t *testing.T) {
	req := `{"op":"canaryHelpers","rollout":{"spec":{"replicas":5,"strategy":{"canary":{"trafficRouting":{"nginx":{"stableIngress":"x"}},` +
		`"steps":[{"setWeight":20},{"setCanaryScale":{"replicas":3}},{"pause":{}}]}}},"status":{"stableRS":"stable","currentPodHash":"new","currentStepIndex":2}},` +
		`"newRS":` + rs("new", 1, 1) + `,"stableRS":` + rs("stable", 5, 5) + `}`
	ans := ask(t, req)
	mustOK(t, ans)
	if ans["GetCurrentSetWeight"] != 20.0 {
		t.Errorf("GetCurrentSetWeight: %v", ans["GetCurrentSetWeight"])
	}
	if got := ans["GetCanaryReplicasOrWeight"].(map[string]any); got["replicas"] != 3.0 {
		t.Errorf("GetCanaryReplicasOrWeight: %v", got)
	}
	if got := ans["NewRSNewReplicas"].(map[string]any); got["replicas"] != 3.0 {
		t.Errorf("NewRSNewReplicas: %v", got)
	}
	// Aborted: the set weight is 0 whatever the step.
	ans = ask(t, strings.Replace(req, `"currentStepIndex":2`, `"currentStepIndex":2,"abort":true`, 1))
	mustOK(t, ans)
	if ans["GetCurrentSetWeight"] != 0.0 {
		t.Errorf("aborted GetCurrentSetWeight: %v", ans["GetCurrentSetWeight"])
	}
}

func TestProtocol(t *testing.T) {
	in := "{\"op\":\"moduleDir\",\"id\":7}\n\n   \nnot json\n{\"op\":\"nope\",\"id\":\"x\"}\n" +
		// Argo dereferences canary.dynamicStableScale when aborted: a panic, reported, not fatal.
		`{"op":"trafficRoutedCanaryCounts","rollout":{"status":{"abort":true,"stableRS":"a","currentPodHash":"b"}}}` + "\n" +
		`{"op":"evaluate","result":1,"successCondition":"result =="}` // no final newline
	var out bytes.Buffer
	if err := serve(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("want 5 answers, got %d: %s", len(lines), out.String())
	}
	var a []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		a = append(a, m)
	}
	if a[0]["id"] != 7.0 || a[1]["ok"] != false || a[2]["id"] != "x" || a[2]["error"] != `unknown op "nope"` {
		t.Errorf("unexpected answers: %v", a[:3])
	}
	if a[3]["ok"] != false || a[3]["panic"] == nil {
		t.Errorf("want a reported panic, got %v", a[3])
	}
	if a[4]["ok"] != true || a[4]["phase"] != "Error" {
		t.Errorf("want an Error phase for a syntax error, got %v", a[4])
	}
}

func TestValidateManifestFileOnArgoLintTestdata(t *testing.T) {
	// go test does not get the build's -X stamp; ask the go command, as ./build does.
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-rollouts").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	testdata := filepath.Join(dir, "pkg/kubectl-argo-rollouts/cmd/lint/testdata")
	for name, wantAccepted := range map[string]bool{"valid.yml": true, "valid-blue-green.yml": true, "invalid.yml": false, "invalid-multiple-docs.yml": false} {
		b, _ := json.Marshal(map[string]any{"op": "validateManifestFile", "path": filepath.Join(testdata, name)})
		ans := ask(t, string(b))
		mustOK(t, ans)
		lintErr := ans["lint"].(map[string]any)["error"]
		if (lintErr == nil) != wantAccepted {
			t.Errorf("%s: lint error %v, want accepted=%v", name, lintErr, wantAccepted)
		}
		for _, d := range ans["documents"].([]any) {
			doc := d.(map[string]any)
			if doc["kind"] == "Rollout" && doc["accepted"] != wantAccepted {
				t.Errorf("%s: rollout %v accepted=%v, want %v", name, doc["name"], doc["accepted"], wantAccepted)
			}
		}
	}
}
