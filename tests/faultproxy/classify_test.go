package main

import (
	"net/url"
	"testing"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		method, target                       string
		verb, group, ns, resource, sub, name string
		watch, resourceReq                   bool
	}{
		{"PATCH", "/apis/argoproj.io/v1alpha1/namespaces/x/rollouts/r/status", "patch", "argoproj.io", "x", "rollouts", "status", "r", false, true},
		{"PUT", "/apis/argoproj.io/v1alpha1/namespaces/x/rollouts/r/status", "update", "argoproj.io", "x", "rollouts", "status", "r", false, true},
		{"GET", "/apis/argoproj.io/v1alpha1/namespaces/x/rollouts/r", "get", "argoproj.io", "x", "rollouts", "", "r", false, true},
		{"GET", "/apis/argoproj.io/v1alpha1/namespaces/x/rollouts", "list", "argoproj.io", "x", "rollouts", "", "", false, true},
		{"GET", "/apis/argoproj.io/v1alpha1/rollouts?watch=true&resourceVersion=5", "watch", "argoproj.io", "", "rollouts", "", "", true, true},
		{"GET", "/api/v1/namespaces/x/pods?watch=true", "watch", "", "x", "pods", "", "", true, true},
		{"GET", "/api/v1/namespaces/x/pods?watch=1", "watch", "", "x", "pods", "", "", true, true},
		{"GET", "/api/v1/namespaces/x/pods?watch=false", "list", "", "x", "pods", "", "", false, true},
		{"GET", "/api/v1/namespaces/x/pods?watch=0", "list", "", "x", "pods", "", "", false, true},
		{"GET", "/api/v1/namespaces/x/pods?watch=", "watch", "", "x", "pods", "", "", true, true}, // as the apiserver parses it
		{"GET", "/api/v1/namespaces/x/pods?fieldSelector=metadata.name%3Dweb&watch=true", "watch", "", "x", "pods", "", "web", true, true},
		{"GET", "/api/v1/watch/namespaces/x/pods", "watch", "", "x", "pods", "", "", true, true},
		{"GET", "/apis/coordination.k8s.io/v1/namespaces/x/leases/n", "get", "coordination.k8s.io", "x", "leases", "", "n", false, true},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/x/leases/n", "update", "coordination.k8s.io", "x", "leases", "", "n", false, true},
		{"POST", "/apis/coordination.k8s.io/v1/namespaces/x/leases", "create", "coordination.k8s.io", "x", "leases", "", "", false, true},
		{"DELETE", "/apis/apps/v1/namespaces/x/replicasets/rs1", "delete", "apps", "x", "replicasets", "", "rs1", false, true},
		{"DELETE", "/apis/apps/v1/namespaces/x/replicasets", "deletecollection", "apps", "x", "replicasets", "", "", false, true},
		{"PATCH", "/apis/apps/v1/namespaces/x/replicasets/rs1/scale?fieldManager=rollout-runner", "patch", "apps", "x", "replicasets", "scale", "rs1", false, true},
		{"GET", "/api/v1/namespaces", "list", "", "", "namespaces", "", "", false, true},
		{"GET", "/api/v1/namespaces/x", "get", "", "x", "namespaces", "", "x", false, true},
		{"PUT", "/api/v1/namespaces/x/finalize", "update", "", "x", "namespaces", "finalize", "x", false, true},
		{"GET", "/api/v1/nodes/n1/status", "get", "", "", "nodes", "status", "n1", false, true},
		{"GET", "/version", "get", "", "", "", "", "", false, false},
		{"GET", "/apis", "get", "", "", "", "", "", false, false},
		{"GET", "/apis/argoproj.io/v1alpha1", "get", "argoproj.io", "", "", "", "", false, false},
		{"GET", "/api", "get", "", "", "", "", "", false, false},
		{"GET", "/healthz", "get", "", "", "", "", "", false, false},
	}
	for _, c := range cases {
		u, err := url.Parse(c.target)
		if err != nil {
			t.Fatal(err)
		}
		ri := classify(c.method, u)
		if ri.Verb != c.verb || ri.Group != c.group || ri.Namespace != c.ns || ri.ResourceN != c.resource ||
			ri.Subresource != c.sub || ri.Name != c.name || ri.Watch != c.watch || ri.Resource != c.resourceReq {
			t.Errorf("%s %s: got %+v", c.method, c.target, ri)
		}
	}
}

func TestRuleMatching(t *testing.T) {
	ri := func(method, target string) reqInfo {
		u, _ := url.Parse(target)
		return classify(method, u)
	}
	status := ri("PATCH", "/apis/argoproj.io/v1alpha1/namespaces/x/rollouts/r/status?fieldManager=rollout-runner")
	main := ri("PATCH", "/apis/argoproj.io/v1alpha1/namespaces/x/rollouts/r")
	get := ri("GET", "/apis/argoproj.io/v1alpha1/namespaces/x/rollouts/r")
	watchRV := ri("GET", "/api/v1/namespaces/x/pods?watch=1&resourceVersion=10")
	watch0 := ri("GET", "/api/v1/namespaces/x/pods?watch=1&resourceVersion=0")
	create := ri("POST", "/apis/coordination.k8s.io/v1/namespaces/x/leases")
	cases := []struct {
		rule       Rule
		ri         reqInfo
		fm, accept string
		want       bool
	}{
		{Rule{Resources: []string{"rollouts/status"}, Fault: faultStatus}, status, "", "", true},
		{Rule{Resources: []string{"rollouts/status"}, Fault: faultStatus}, main, "", "", false},
		{Rule{Resources: []string{"rollouts"}, Fault: faultStatus}, status, "", "", false},
		{Rule{Resources: []string{"rollouts"}, Fault: faultStatus}, main, "", "", true},
		{Rule{Resources: []string{"rollouts/*"}, Fault: faultStatus}, status, "", "", true},
		{Rule{Resources: []string{"*/status"}, Fault: faultStatus}, status, "", "", true},
		{Rule{Resources: []string{"*"}, Fault: faultStatus}, status, "", "", true},
		{Rule{Resources: []string{"rollouts.argoproj.io/status"}, Fault: faultStatus}, status, "", "", true},
		{Rule{Resources: []string{"rollouts.apps"}, Fault: faultStatus}, main, "", "", false},
		{Rule{Namespaces: []string{"x"}, Fault: faultStatus}, main, "", "", true},
		{Rule{Namespaces: []string{"y"}, Fault: faultStatus}, main, "", "", false},
		{Rule{FieldManagers: []string{"rollout-runner"}, Fault: faultStatus}, status, "rollout-runner", "", true},
		{Rule{FieldManagers: []string{"rollout-runner"}, Fault: faultStatus}, main, "", "", false},
		{Rule{Fault: faultConflict}, main, "", "", true},
		{Rule{Fault: faultConflict}, get, "", "", false},
		{Rule{Fault: faultConflict}, create, "", "", false},
		{Rule{Fault: faultCloseEarly}, watchRV, "", "", true},
		{Rule{Fault: faultCloseEarly}, get, "", "", false},
		{Rule{Fault: faultGone}, watchRV, "", "application/json", true},
		{Rule{Fault: faultGone}, watchRV, "", "application/vnd.kubernetes.protobuf;stream=watch", false},
		{Rule{Fault: faultGone}, watch0, "", "", false},
		{Rule{Verbs: []string{"get"}, Fault: faultStatus}, reqInfo{Verb: "get"}, "", "", false}, // non-resource
		{Rule{Fault: faultStatus}, reqInfo{Verb: "get"}, "", "", true},
	}
	for i, c := range cases {
		if got := c.rule.applies(c.ri, c.fm, "", c.accept); got != c.want {
			t.Errorf("case %d: rule %+v on %+v: got %v", i, c.rule, c.ri, got)
		}
	}
}

func TestDecodeRules(t *testing.T) {
	ex := `[{"verbs":["patch"],"resources":["rollouts/status"],"fault":"conflict","rate":0.1}, {"verbs":["watch"],"fault":"close-early","rate":0.2,"after":"2s"}, {"fault":"status","code":503,"rate":0.05}, {"fault":"throttle","rate":0.05,"retryAfter":1}, {"fault":"delay","delay":"300ms","rate":0.1}, {"fault":"reset","rate":0.02}, {"verbs":["watch"],"fault":"gone","rate":0.3}]`
	rules, err := parseRules(ex)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 7 || rules[0].Name != "0:conflict" || rules[4].Delay.String() != "300ms" {
		t.Fatalf("%+v", rules)
	}
	for _, bad := range []string{
		`[{"fault":"nope"}]`, `[{"fault":"status","rate":2}]`, `[{"fault":"status","verbs":["fetch"]}]`,
		`[{"fault":"delay"}]`, `[{"fault":"status","typo":1}]`, `[{"fault":"delay","delay":300}]`,
	} {
		if _, err := decodeRules([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
