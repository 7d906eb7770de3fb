package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	log "github.com/sirupsen/logrus"
)

func TestMain(m *testing.M) {
	log.SetOutput(io.Discard) // as main does: Argo's logs are not the protocol
	os.Exit(m.Run())
}

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

// assessMetricStatus is reached through go:linkname; these pin its verdicts so that an Argo upgrade
// that changes them (or breaks the link) shows up here.
func TestAssessMetric(t *testing.T) {
	cases := []struct {
		req, phase, message string
	}{
		{`"metric":{"name":"m","count":3,"failureLimit":1},"result":{"name":"m","count":3,"successful":2,"failed":1,"measurements":[{"phase":"Successful"}]}`, "Successful", ""},
		{`"metric":{"name":"m","failureLimit":1},"result":{"name":"m","count":3,"failed":2,"measurements":[{"phase":"Failed"}]}`, "Failed", "failed (2) > failureLimit (1)"},
		{`"metric":{"name":"m"},"result":{"name":"m","count":5,"error":5,"consecutiveError":5,"measurements":[{"phase":"Error"}]}`, "Error", "consecutiveErrors (5) > consecutiveErrorLimit (4)"},
		{`"metric":{"name":"m","interval":"1m"},"result":{"name":"m","count":1,"measurements":[{"phase":"Running"}]}`, "Running", ""},
		{`"metric":{"name":"m"},"result":{"name":"m"}`, "Pending", ""},
		{`"metric":{"name":"m"},"result":{"name":"m"},"terminating":true`, "Successful", ""},
	}
	for _, c := range cases {
		ans := ask(t, `{"op":"assessMetric",`+c.req+`}`)
		mustOK(t, ans)
		detail := ans["assessMetricFailureInconclusiveOrError"].(map[string]any)
		if ans["assessMetricStatus"] != c.phase || detail["message"] != c.message {
			t.Errorf("%s: got %v / %v, want %s / %q", c.req, ans["assessMetricStatus"], detail["message"], c.phase, c.message)
		}
	}
}

// docs/analysis/web.md: jsonPath "{$.data}", successCondition "result == true".
func TestWebMetric(t *testing.T) {
	metric := `"metric":{"name":"webmetric","successCondition":"result == true","provider":{"web":{"url":"http://my-server.com/api/v1/measurement?service=x","jsonPath":"{$.data}"}}}`
	cases := []struct{ response, phase, message string }{
		{`{"status":200,"body":"{\"data\":true}"}`, "Successful", ""},
		{`{"status":200,"body":"{\"data\":false}"}`, "Failed", ""},
		{`{"status":503,"body":"{\"data\":true}"}`, "Error", "received non 2xx response code: 503"},
		// A body that is not JSON is Successful without evaluating the condition.
		{`{"status":200,"body":"not json"}`, "Successful", ""},
	}
	for _, c := range cases {
		ans := ask(t, `{"op":"webMetric",`+metric+`,"response":`+c.response+`}`)
		mustOK(t, ans)
		if ans["phase"] != c.phase || ans["message"] != c.message {
			t.Errorf("%s: got %v %q, want %s %q", c.response, ans["phase"], ans["message"], c.phase, c.message)
		}
	}
}

func TestValidateOps(t *testing.T) {
	ro := `{"metadata":{"name":"r"},"spec":{"selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"x"}},"spec":{"containers":[{"name":"c","image":"i"}]}},` +
		`"strategy":{"canary":{"stableService":"web","canaryService":"web-canary","steps":[{"setWeight":%d}]}}}}`
	ans := ask(t, `{"op":"validateRollout","rollout":`+fmt.Sprintf(ro, 120)+`}`)
	mustOK(t, ans)
	errs := ans["errors"].([]any)
	if len(errs) != 1 || errs[0].(map[string]any)["error"] != "spec.strategy.steps[0].setWeight: Invalid value: 120: SetWeight needs to be between 0 and 100" {
		t.Errorf("setWeight 120: %v", errs)
	}
	ans = ask(t, `{"op":"validateRollout","controller":true,"services":[{"metadata":{"name":"web"}}],"rollout":`+fmt.Sprintf(ro, 20)+`}`)
	mustOK(t, ans)
	if got := ans["controller"].(map[string]any)["invalidSpecMessage"]; got != `The Rollout "r" is invalid: spec.strategy.canary.canaryService: Invalid value: "web-canary": service "web-canary" not found` {
		t.Errorf("missing canary service: %v", got)
	}
	ans = ask(t, `{"op":"validateExperiment","experiment":{"metadata":{"name":"e"},"spec":{"templates":[{"name":"a","selector":{"matchLabels":{"a":"b"}}},{"name":"a","selector":{"matchLabels":{"a":"b"}}}]}}}`)
	mustOK(t, ans)
	if got := ans["VerifyExperimentSpec"].(map[string]any)["message"]; got != "Experiment e has repeated template name 'a' in templates" {
		t.Errorf("experiment: %v", got)
	}
	ans = ask(t, `{"op":"validateAnalysisRun","run":{"spec":{"metrics":[{"name":"m","provider":{"web":{"url":"http://{{args.host}}/"}}}]}}}`)
	mustOK(t, ans)
	if ans["analysisRunCheck"] != "Unable to resolve metric arguments: failed to resolve {{args.host}}" {
		t.Errorf("analysis run: %v", ans["analysisRunCheck"])
	}
}

// docs/features/canary/index.md (basic canary: 10 replicas at 10% -> 1 new and 9 stable; at 41% -> 4
// and 6) and docs/features/hpa-support.md (setWeight 20 on 10 pods -> 2 and 8, on 20 pods -> 4 and
// 16). The docs describe where the controller ends up, so the counts are applied (all pods
// available) until they stop changing.
func TestBasicCanaryConvergesToDocumentedCounts(t *testing.T) {
	cases := []struct{ replicas, weight, wantNew, wantStable int }{
		{10, 10, 1, 9}, {10, 41, 4, 6}, {10, 20, 2, 8}, {20, 20, 4, 16},
	}
	for _, c := range cases {
		newN, stableN := 0, c.replicas
		converged := false
		for i := 0; i < 20 && !converged; i++ {
			req := fmt.Sprintf(`{"op":"basicCanaryCounts","rollout":{"spec":{"replicas":%d,"strategy":{"canary":{"steps":[{"setWeight":%d}]}}},"status":{"stableRS":"stable","currentPodHash":"new","currentStepIndex":0}},"newRS":%s,"stableRS":%s}`,
				c.replicas, c.weight, rs("new", newN, newN), rs("stable", stableN, stableN))
			ans := ask(t, req)
			mustOK(t, ans)
			n, s := int(ans["new"].(float64)), int(ans["stable"].(float64))
			converged = n == newN && s == stableN
			newN, stableN = n, s
		}
		if !converged || newN != c.wantNew || stableN != c.wantStable {
			t.Errorf("replicas %d setWeight %d: ended at new %d stable %d (converged %v), docs say %d and %d",
				c.replicas, c.weight, newN, stableN, converged, c.wantNew, c.wantStable)
		}
	}
}

// docs/features/canary/index.md "Dynamic Canary Scale": weight 25% on four replicas -> 1 canary (the
// stable stays at 100% without dynamicStableScale); setCanaryScale weight 10 then setWeight 90 on ten
// replicas -> 1 canary pod.
func TestTrafficRoutedCanaryDocumentedExamples(t *testing.T) {
	cases := []struct {
		replicas          int
		steps             string
		step              int
		wantNew, wantStbl float64
	}{
		{4, `[{"setWeight":25},{"pause":{}}]`, 1, 1, 4},
		{10, `[{"setCanaryScale":{"weight":10}},{"setWeight":90},{"pause":{}}]`, 2, 1, 10},
	}
	for _, c := range cases {
		req := fmt.Sprintf(`{"op":"trafficRoutedCanaryCounts","rollout":{"spec":{"replicas":%d,"strategy":{"canary":{"trafficRouting":{"nginx":{"stableIngress":"web"}},"steps":%s}}},"status":{"stableRS":"stable","currentPodHash":"new","currentStepIndex":%d}}}`,
			c.replicas, c.steps, c.step)
		ans := ask(t, req)
		mustOK(t, ans)
		if ans["new"] != c.wantNew || ans["stable"] != c.wantStbl {
			t.Errorf("%d replicas, steps %s at %d: got new %v stable %v, want %v %v", c.replicas, c.steps, c.step, ans["new"], ans["stable"], c.wantNew, c.wantStbl)
		}
	}
}

// Every request/answer pair in README.md's ```json blocks is replayed, so the documented protocol
// cannot drift from the binary. "…" in a request stands for Argo's module directory.
func TestReadmeExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-rollouts").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	saved := moduleDir
	moduleDir = dir // what ./build stamps
	defer func() { moduleDir = saved }()
	// The README writes the module cache as $GOMODCACHE.
	const docDir = "$GOMODCACHE/github.com/argoproj/argo-rollouts@v1.10.2"
	n := 0
	for _, block := range strings.Split(string(readme), "```json\n")[1:] {
		block = block[:strings.Index(block, "```")]
		var lines []string
		for _, l := range strings.Split(block, "\n") {
			if strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
		for i := 0; i+1 < len(lines); i += 2 {
			got := ask(t, strings.ReplaceAll(lines[i], "…", dir))
			var want map[string]any
			if err := json.Unmarshal([]byte(strings.ReplaceAll(lines[i+1], docDir, dir)), &want); err != nil {
				t.Fatalf("README answer is not JSON: %s", lines[i+1])
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			if !bytes.Equal(gb, wb) {
				t.Errorf("README example %s\n documented: %s\n actual:     %s", lines[i], wb, gb)
			}
			n++
		}
	}
	if n < 10 {
		t.Fatalf("found only %d examples in README.md", n)
	}
}
