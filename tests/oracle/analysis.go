package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	_ "unsafe" // go:linkname

	log "github.com/sirupsen/logrus"

	_ "github.com/argoproj/argo-rollouts/analysis" // linked for assessMetricStatus below
	"github.com/argoproj/argo-rollouts/metricproviders/webmetric"
	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	analysisutil "github.com/argoproj/argo-rollouts/utils/analysis"
	"github.com/argoproj/argo-rollouts/utils/defaults"
	"github.com/argoproj/argo-rollouts/utils/evaluate"
)

// The analysis controller's per-metric assessment is unexported; it is a plain function, so the
// linker can hand it to us. This is Argo's code, not a copy.
//
//go:linkname assessMetricStatus github.com/argoproj/argo-rollouts/analysis.assessMetricStatus
func assessMetricStatus(metric v1alpha1.Metric, result v1alpha1.MetricResult, terminating bool) v1alpha1.AnalysisPhase

//go:linkname assessMetricFailureInconclusiveOrError github.com/argoproj/argo-rollouts/analysis.assessMetricFailureInconclusiveOrError
func assessMetricFailureInconclusiveOrError(metric v1alpha1.Metric, result v1alpha1.MetricResult) (v1alpha1.AnalysisPhase, string)

func init() {
	register("evaluate", opEvaluate)
	register("webMetric", opWebMetric)
	register("assessMetric", opAssessMetric)
	register("validateMetrics", opValidateMetrics)
}

// resultValue turns the request's JSON result into the Go value a provider hands to
// EvaluateResult:
//   - "json" (default): what encoding/json gives for `any` (float64, string, bool, nil,
//     []any, map[string]any): the web provider's values.
//   - "prometheus": a number -> float64 (scalar), an array -> []float64 (vector/matrix, never nil);
//     "NaN", "+Inf", "-Inf" strings stand for those floats.
//   - "datadog": null -> (*float64)(nil) (empty series), a number -> float64 (a point's value).
func resultValue(raw json.RawMessage, kind string) (any, error) {
	if len(raw) == 0 {
		raw = json.RawMessage("null")
	}
	switch kind {
	case "", "json":
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("bad result: %v", err)
		}
		return v, nil
	case "prometheus":
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("bad result: %v", err)
		}
		if arr, isArr := v.([]any); isArr {
			out := make([]float64, 0, len(arr))
			for _, e := range arr {
				f, err := promFloat(e)
				if err != nil {
					return nil, err
				}
				out = append(out, f)
			}
			return out, nil
		}
		return promFloat(v)
	case "datadog":
		var v *float64
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("bad result: %v", err)
		}
		if v == nil {
			return v, nil
		}
		return *v, nil
	}
	return nil, fmt.Errorf("unknown resultType %q (json, prometheus, datadog)", kind)
}

func promFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case string:
		switch x {
		case "NaN":
			return math.NaN(), nil
		case "+Inf", "Inf":
			return math.Inf(1), nil
		case "-Inf":
			return math.Inf(-1), nil
		}
	}
	return 0, fmt.Errorf("prometheus result must be numbers or \"NaN\"/\"+Inf\"/\"-Inf\", got %v", v)
}

func opEvaluate(raw []byte) (map[string]any, error) {
	var req struct {
		Result           json.RawMessage  `json:"result"`
		ResultType       string           `json:"resultType"`
		SuccessCondition string           `json:"successCondition"`
		FailureCondition string           `json:"failureCondition"`
		Metric           *v1alpha1.Metric `json:"metric"`
	}
	if err := decode(raw, &req); err != nil {
		return nil, err
	}
	metric := v1alpha1.Metric{Name: "oracle", SuccessCondition: req.SuccessCondition, FailureCondition: req.FailureCondition}
	if req.Metric != nil {
		metric = *req.Metric
	}
	result, err := resultValue(req.Result, req.ResultType)
	if err != nil {
		return nil, err
	}
	phase, evalErr := evaluate.EvaluateResult(result, metric, *log.NewEntry(log.StandardLogger()))
	ans := map[string]any{"phase": phase, "error": errString(evalErr), "goType": fmt.Sprintf("%T", result)}
	// Each condition on its own through EvalCondition: shows what the expression itself gave.
	for name, cond := range map[string]string{"evalSuccessCondition": metric.SuccessCondition, "evalFailureCondition": metric.FailureCondition} {
		if cond == "" {
			continue
		}
		v, err := evalConditionSafe(result, cond)
		ans[name] = map[string]any{"value": v, "error": err}
	}
	return ans, nil
}

func evalConditionSafe(result any, cond string) (value any, errText any) {
	defer func() {
		if r := recover(); r != nil {
			value, errText = nil, fmt.Sprintf("panic: %v", r)
		}
	}()
	v, err := evaluate.EvalCondition(result, cond)
	if err != nil {
		return nil, err.Error()
	}
	return v, nil
}

// cannedTransport answers every request with one fixed response and records the request.
type cannedTransport struct {
	status int
	body   string
	seen   *http.Request
	sent   string
}

func (c *cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.seen = r
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		c.sent = string(b)
	}
	return &http.Response{
		StatusCode: c.status,
		Status:     http.StatusText(c.status),
		Body:       io.NopCloser(strings.NewReader(c.body)),
		Header:     http.Header{"Content-Type": []string{"application/json"}},
		Request:    r,
	}, nil
}

// opWebMetric runs the web provider's Run (request building, status check, JSON parse, jsonPath,
// EvaluateResult) against a canned HTTP response.
func opWebMetric(raw []byte) (map[string]any, error) {
	var req struct {
		Metric   v1alpha1.Metric `json:"metric"`
		Response struct {
			Status int    `json:"status"`
			Body   string `json:"body"`
		} `json:"response"`
	}
	if err := decode(raw, &req); err != nil {
		return nil, err
	}
	if req.Metric.Provider.Web == nil {
		return nil, fmt.Errorf("metric.provider.web is required")
	}
	if req.Response.Status == 0 {
		req.Response.Status = 200
	}
	parser, err := webmetric.NewWebMetricJsonParser(req.Metric)
	if err != nil {
		return map[string]any{"jsonParserError": err.Error()}, nil
	}
	tr := &cannedTransport{status: req.Response.Status, body: req.Response.Body}
	p := webmetric.NewWebMetricProvider(*log.NewEntry(log.StandardLogger()), &http.Client{Transport: tr}, parser)
	m := p.Run(&v1alpha1.AnalysisRun{}, req.Metric)
	ans := map[string]any{"phase": m.Phase, "value": m.Value, "message": m.Message}
	if tr.seen != nil {
		headers := map[string]string{}
		for k := range tr.seen.Header {
			headers[k] = tr.seen.Header.Get(k)
		}
		ans["request"] = map[string]any{"method": tr.seen.Method, "url": tr.seen.URL.String(), "headers": headers, "body": tr.sent}
	} else {
		ans["request"] = nil
	}
	return ans, nil
}

// opAssessMetric runs the analysis controller's assessMetricStatus (the metric's phase from its
// measurements and limits) and assessMetricFailureInconclusiveOrError (the phase and message
// that end up in the run's message).
func opAssessMetric(raw []byte) (map[string]any, error) {
	var req struct {
		Metric      v1alpha1.Metric       `json:"metric"`
		Result      v1alpha1.MetricResult `json:"result"`
		Terminating bool                  `json:"terminating"`
	}
	if err := decode(raw, &req); err != nil {
		return nil, err
	}
	phase := assessMetricStatus(req.Metric, req.Result, req.Terminating)
	fPhase, fMsg := assessMetricFailureInconclusiveOrError(req.Metric, req.Result)
	ans := map[string]any{
		"assessMetricStatus":                     phase,
		"assessMetricFailureInconclusiveOrError": map[string]any{"phase": fPhase, "message": fMsg},
		"GetConsecutiveErrorLimitOrDefault":      defaults.GetConsecutiveErrorLimitOrDefault(&req.Metric),
	}
	if ec := req.Metric.EffectiveCount(); ec != nil {
		ans["EffectiveCount"] = ec.String()
	} else {
		ans["EffectiveCount"] = nil
	}
	return ans, nil
}

func opValidateMetrics(raw []byte) (map[string]any, error) {
	var req struct {
		Metrics []v1alpha1.Metric `json:"metrics"`
	}
	if err := decode(raw, &req); err != nil {
		return nil, err
	}
	per := make([]any, 0, len(req.Metrics))
	for _, m := range req.Metrics {
		per = append(per, errString(analysisutil.ValidateMetric(m)))
	}
	return map[string]any{"ValidateMetrics": errString(analysisutil.ValidateMetrics(req.Metrics)), "ValidateMetric": per}, nil
}
