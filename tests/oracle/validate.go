package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	_ "unsafe" // go:linkname

	goyaml "go.yaml.in/yaml/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	k8serrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/validation"
	listers "github.com/argoproj/argo-rollouts/pkg/client/listers/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/pkg/kubectl-argo-rollouts/cmd/lint"
	"github.com/argoproj/argo-rollouts/pkg/kubectl-argo-rollouts/options"
	analysisutil "github.com/argoproj/argo-rollouts/utils/analysis"
	"github.com/argoproj/argo-rollouts/utils/conditions"
	ingressutil "github.com/argoproj/argo-rollouts/utils/ingress"
)

//go:linkname getResolvedMetricsWithoutSecrets github.com/argoproj/argo-rollouts/analysis.getResolvedMetricsWithoutSecrets
func getResolvedMetricsWithoutSecrets(metrics []v1alpha1.Metric, args []v1alpha1.Argument) ([]v1alpha1.Metric, error)

func init() {
	register("validateRollout", opValidateRollout)
	register("validateAnalysisTemplate", opValidateAnalysisTemplate)
	register("validateAnalysisRun", opValidateAnalysisRun)
	register("validateExperiment", opValidateExperiment)
	register("validateManifestFile", opValidateManifestFile)
	register("lint", opLint)
	register("moduleDir", opModuleDir)
}

func fieldErrors(list field.ErrorList) []any {
	out := make([]any, 0, len(list))
	for _, e := range list {
		out = append(out, fieldError(e))
	}
	return out
}

func fieldError(e *field.Error) map[string]any {
	bad := e.BadValue
	if _, err := json.Marshal(bad); err != nil {
		bad = fmt.Sprint(bad)
	}
	return map[string]any{
		"field": e.Field, "type": string(e.Type), "typeString": e.Type.String(),
		"detail": e.Detail, "badValue": bad, "error": e.Error(), "body": e.ErrorBody(),
	}
}

// cluster is the set of objects the rollout controller could find in the rollout's namespace.
type cluster struct {
	Services                 []corev1.Service                   `json:"services"`
	AnalysisTemplates        []v1alpha1.AnalysisTemplate        `json:"analysisTemplates"`
	ClusterAnalysisTemplates []v1alpha1.ClusterAnalysisTemplate `json:"clusterAnalysisTemplates"`
	Ingresses                []networkingv1.Ingress             `json:"ingresses"`
}

// controllerValidation mirrors rollout/controller.go getRolloutValidationErrors and
// getRolloutReferencedResources for the references that need only Services and
// (Cluster)AnalysisTemplates and networking/v1 Ingresses (getReferencedIngresses), read through
// Argo's and client-go's real listers from the given objects. VirtualServices, Ambassador
// mappings and App Mesh resources are not looked up here (the lint op covers virtual services in
// a file). `analysisRuns` mirrors what the controller does with each analysis the rollout
// references (rollout/analysis.go: BuildArgumentsForRolloutAnalysisRun,
// NewAnalysisRunFromTemplates) followed by analysisRunCheck: the message the AnalysisRun would
// end in (phase Error) before any measurement, or the error creating it.
func controllerValidation(ro *v1alpha1.Rollout, c cluster) map[string]any {
	ans := map[string]any{}
	var first error
	var refErrs field.ErrorList
	func() {
		if errs := validation.ValidateRollout(ro); len(errs) > 0 {
			first = errs[0]
			return
		}
		ns := ro.Namespace
		svcIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		for i := range c.Services {
			s := c.Services[i].DeepCopy()
			if s.Namespace == "" {
				s.Namespace = ns
			}
			_ = svcIdx.Add(s)
		}
		atIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		for i := range c.AnalysisTemplates {
			t := c.AnalysisTemplates[i].DeepCopy()
			if t.Namespace == "" {
				t.Namespace = ns
			}
			_ = atIdx.Add(t)
		}
		catIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
		for i := range c.ClusterAnalysisTemplates {
			_ = catIdx.Add(c.ClusterAnalysisTemplates[i].DeepCopy())
		}
		ingIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		for i := range c.Ingresses {
			ing := c.Ingresses[i].DeepCopy()
			if ing.Namespace == "" {
				ing.Namespace = ns
			}
			_ = ingIdx.Add(ing)
		}
		g := refGetter{ro: ro, svc: corelisters.NewServiceLister(svcIdx), at: listers.NewAnalysisTemplateLister(atIdx), cat: listers.NewClusterAnalysisTemplateLister(catIdx), ing: networkinglisters.NewIngressLister(ingIdx)}
		refs := validation.ReferencedResources{}
		services, err := g.services()
		if err != nil {
			first = err
			return
		}
		refs.ServiceWithType = services
		analyses, err := g.analyses()
		if err != nil {
			first = err
			return
		}
		refs.AnalysisTemplatesWithType = analyses
		ans["analysisRuns"] = analysisRuns(ro, analyses)
		for _, check := range []func(*v1alpha1.Rollout) error{validation.ValidateRolloutNginxIngressesConfig, validation.ValidateRolloutAlbIngressesConfig} {
			if err := check(ro); err != nil {
				first = err
				return
			}
		}
		ingresses, err := g.ingresses()
		if err != nil {
			first = err
			return
		}
		refs.Ingresses = ingresses
		if err := validation.ValidateRolloutVirtualServicesConfig(ro); err != nil {
			first = err
			return
		}
		refErrs = validation.ValidateRolloutReferencedResources(ro, refs)
		if len(refErrs) > 0 {
			first = refErrs[0]
		}
	}()
	ans["referencedResourceErrors"] = fieldErrors(refErrs)
	if first != nil {
		ans["error"] = first.Error()
		// The InvalidSpec condition message (rollout/controller.go createInvalidRolloutCondition).
		ans["invalidSpecMessage"] = fmt.Sprintf("The Rollout \"%s\" is invalid: %s", ro.Name, first.Error())
	} else {
		ans["error"] = nil
		ans["invalidSpecMessage"] = nil
	}
	if tr := trafficRouting(ro); tr != nil && (tr.Nginx != nil || tr.ALB != nil || tr.Istio != nil || tr.Ambassador != nil || tr.AppMesh != nil) {
		ans["notLookedUp"] = "virtual services, ambassador mappings and app mesh resources are not looked up"
	}
	if n := multiKeySelectors(c.Services); n {
		ans["nondeterministic"] = "ValidateService ranges over a Service selector map: with several mismatched labels the error order varies"
	}
	return ans
}

func trafficRouting(ro *v1alpha1.Rollout) *v1alpha1.RolloutTrafficRouting {
	if ro.Spec.Strategy.Canary == nil {
		return nil
	}
	return ro.Spec.Strategy.Canary.TrafficRouting
}

func multiKeySelectors(svcs []corev1.Service) bool {
	for _, s := range svcs {
		n := 0
		for k := range s.Spec.Selector {
			if k != v1alpha1.DefaultRolloutUniqueLabelKey {
				n++
			}
		}
		if n > 1 {
			return true
		}
	}
	return false
}

type refGetter struct {
	ro  *v1alpha1.Rollout
	svc corelisters.ServiceLister
	at  listers.AnalysisTemplateLister
	cat listers.ClusterAnalysisTemplateLister
	ing networkinglisters.IngressLister
}

// ingresses mirrors getReferencedIngresses (ALB, then NGINX) and handleCacheError, for
// networking/v1 Ingresses.
func (g refGetter) ingresses() ([]ingressutil.Ingress, error) {
	canary := g.ro.Spec.Strategy.Canary
	if canary == nil || canary.TrafficRouting == nil {
		return nil, nil
	}
	var out []ingressutil.Ingress
	get := func(router string, child string, value any, name string) error {
		ing, err := g.ing.Ingresses(g.ro.Namespace).Get(name)
		if k8serrors.IsNotFound(err) {
			return field.Invalid(field.NewPath("spec", "strategy", "canary", "trafficRouting").Child(router, child), value, err.Error())
		}
		if err != nil {
			return err
		}
		out = append(out, *ingressutil.NewIngress(ing))
		return nil
	}
	switch tr := canary.TrafficRouting; {
	case tr.ALB != nil && tr.ALB.Ingresses != nil:
		for _, name := range tr.ALB.Ingresses {
			if err := get("alb", "ingresses", tr.ALB.Ingresses, name); err != nil {
				return nil, err
			}
		}
	case tr.ALB != nil:
		if err := get("alb", "ingress", tr.ALB.Ingress, tr.ALB.Ingress); err != nil {
			return nil, err
		}
	case tr.Nginx != nil && tr.Nginx.StableIngresses != nil:
		for _, name := range tr.Nginx.StableIngresses {
			if err := get("nginx", "StableIngresses", tr.Nginx.StableIngresses, name); err != nil {
				return nil, err
			}
		}
	case tr.Nginx != nil:
		if err := get("nginx", "stableIngress", tr.Nginx.StableIngress, tr.Nginx.StableIngress); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// analysisRuns: for each analysis the rollout references, the AnalysisRun the controller would
// create (with the rollout's arguments; no ReplicaSets, so pod-template-hash arguments are
// empty) and the message it would end in before any measurement.
func analysisRuns(ro *v1alpha1.Rollout, analyses []validation.AnalysisTemplatesWithType) []any {
	out := []any{}
	for _, a := range analyses {
		entry := map[string]any{"type": string(a.TemplateType), "stepIndex": a.CanaryStepIndex}
		args, err := analysisutil.BuildArgumentsForRolloutAnalysisRun(a.Args, &appsv1.ReplicaSet{}, &appsv1.ReplicaSet{}, ro)
		if err == nil {
			var run *v1alpha1.AnalysisRun
			run, err = analysisutil.NewAnalysisRunFromTemplates(a.AnalysisTemplates, a.ClusterAnalysisTemplates, args, nil, nil, map[string]string{}, map[string]string{}, "oracle", "", ro.Namespace)
			if err == nil {
				entry["analysisRunCheck"] = analysisRunCheck(run.Spec)
			}
		}
		entry["error"] = errString(err)
		out = append(out, entry)
	}
	return out
}

// services mirrors getReferencedServices / getReferencedService.
func (g refGetter) services() ([]validation.ServiceWithType, error) {
	var out []validation.ServiceWithType
	get := func(name string, t validation.ServiceType) error {
		if name == "" {
			return nil
		}
		svc, err := g.svc.Services(g.ro.Namespace).Get(name)
		if k8serrors.IsNotFound(err) {
			return field.Invalid(validation.GetServiceWithTypeFieldPath(t), name, err.Error())
		}
		if err != nil {
			return err
		}
		out = append(out, validation.ServiceWithType{Service: svc, Type: t})
		return nil
	}
	if bg := g.ro.Spec.Strategy.BlueGreen; bg != nil {
		if err := get(bg.ActiveService, validation.ActiveService); err != nil {
			return nil, err
		}
		if err := get(bg.PreviewService, validation.PreviewService); err != nil {
			return nil, err
		}
	} else if c := g.ro.Spec.Strategy.Canary; c != nil {
		if err := get(c.StableService, validation.StableService); err != nil {
			return nil, err
		}
		if err := get(c.CanaryService, validation.CanaryService); err != nil {
			return nil, err
		}
		if c.PingPong != nil {
			if err := get(c.PingPong.PingService, validation.PingService); err != nil {
				return nil, err
			}
			if err := get(c.PingPong.PongService, validation.PongService); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// analyses mirrors getReferencedRolloutAnalyses / getReferencedAnalysisTemplates.
func (g refGetter) analyses() ([]validation.AnalysisTemplatesWithType, error) {
	out := make([]validation.AnalysisTemplatesWithType, 0)
	add := func(a *v1alpha1.RolloutAnalysis, t validation.AnalysisTemplateType, idx int, args []v1alpha1.AnalysisRunArgument) error {
		fld := validation.GetAnalysisTemplateWithTypeFieldPath(t, idx)
		ts, cts, err := g.fromRefs(&a.Templates, fld)
		if err != nil {
			return err
		}
		out = append(out, validation.AnalysisTemplatesWithType{AnalysisTemplates: ts, ClusterAnalysisTemplates: cts, TemplateType: t, CanaryStepIndex: idx, Args: args})
		return nil
	}
	if bg := g.ro.Spec.Strategy.BlueGreen; bg != nil {
		if bg.PrePromotionAnalysis != nil {
			if err := add(bg.PrePromotionAnalysis, validation.PrePromotionAnalysis, 0, bg.PrePromotionAnalysis.Args); err != nil {
				return nil, err
			}
		}
		if bg.PostPromotionAnalysis != nil {
			if err := add(bg.PostPromotionAnalysis, validation.PostPromotionAnalysis, 0, bg.PostPromotionAnalysis.Args); err != nil {
				return nil, err
			}
		}
	} else if c := g.ro.Spec.Strategy.Canary; c != nil {
		for i, step := range c.Steps {
			if step.Analysis != nil {
				if err := add(step.Analysis, validation.InlineAnalysis, i, step.Analysis.Args); err != nil {
					return nil, err
				}
			}
		}
		if c.Analysis != nil {
			if err := add(&c.Analysis.RolloutAnalysis, validation.BackgroundAnalysis, 0, c.Analysis.Args); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// fromRefs mirrors getReferencedAnalysisTemplatesFromRef (nested templates included).
func (g refGetter) fromRefs(refs *[]v1alpha1.AnalysisTemplateRef, fld *field.Path) ([]*v1alpha1.AnalysisTemplate, []*v1alpha1.ClusterAnalysisTemplate, error) {
	ts := make([]*v1alpha1.AnalysisTemplate, 0)
	cts := make([]*v1alpha1.ClusterAnalysisTemplate, 0)
	for _, ref := range *refs {
		var nested []v1alpha1.AnalysisTemplateRef
		if ref.IsClusterScope() {
			t, err := g.cat.Get(ref.TemplateName)
			if err != nil {
				if k8serrors.IsNotFound(err) {
					return nil, nil, field.Invalid(fld, ref.TemplateName, fmt.Sprintf("ClusterAnalysisTemplate '%s' not found", ref.TemplateName))
				}
				return nil, nil, err
			}
			cts = append(cts, t)
			nested = t.Spec.Templates
		} else {
			t, err := g.at.AnalysisTemplates(g.ro.Namespace).Get(ref.TemplateName)
			if err != nil {
				if k8serrors.IsNotFound(err) {
					return nil, nil, field.Invalid(fld, ref.TemplateName, fmt.Sprintf("AnalysisTemplate '%s' not found", ref.TemplateName))
				}
				return nil, nil, err
			}
			ts = append(ts, t)
			nested = t.Spec.Templates
		}
		if nested != nil {
			its, icts, err := g.fromRefs(&nested, field.NewPath("spec", "templates"))
			if err != nil {
				return nil, nil, err
			}
			cts = append(cts, icts...)
			ts = append(ts, its...)
		}
	}
	uts, ucts := analysisutil.FilterUniqueTemplates(ts, cts)
	return uts, ucts, nil
}

func opValidateRollout(raw []byte) (map[string]any, error) {
	var req struct {
		Rollout v1alpha1.Rollout `json:"rollout"`
		cluster
		Controller bool `json:"controller"`
	}
	if err := decode(raw, &req); err != nil {
		return nil, err
	}
	ans := map[string]any{"errors": fieldErrors(validation.ValidateRollout(req.Rollout.DeepCopy()))}
	if req.Controller {
		ans["controller"] = controllerValidation(req.Rollout.DeepCopy(), req.cluster)
	}
	return ans, nil
}

// analysisRunCheck mirrors the checks at the top of analysis/analysis.go reconcileAnalysisRun
// (argument resolution, ValidateMetrics, dry-run and measurement-retention names) and gives the
// message the controller puts in status.message with phase Error, or nil.
func analysisRunCheck(spec v1alpha1.AnalysisRunSpec) any {
	resolved, err := getResolvedMetricsWithoutSecrets(spec.Metrics, spec.Args)
	if err != nil {
		return fmt.Sprintf("Unable to resolve metric arguments: %v", err)
	}
	if err := analysisutil.ValidateMetrics(resolved); err != nil {
		return fmt.Sprintf("Analysis spec invalid: %v", err)
	}
	if _, err := analysisutil.GetDryRunMetrics(spec.DryRun, resolved); err != nil {
		return fmt.Sprintf("Analysis spec invalid: %v", err)
	}
	if _, err := analysisutil.GetMeasurementRetentionMetrics(spec.MeasurementRetention, resolved); err != nil {
		return fmt.Sprintf("Analysis spec invalid: %v", err)
	}
	return nil
}

func templateVerdict(templates []*v1alpha1.AnalysisTemplate, clusterTemplates []*v1alpha1.ClusterAnalysisTemplate, metrics []v1alpha1.Metric, args []v1alpha1.Argument) map[string]any {
	ans := map[string]any{"ValidateMetrics": errString(analysisutil.ValidateMetrics(metrics))}
	run, err := analysisutil.NewAnalysisRunFromTemplates(templates, clusterTemplates, args, nil, nil, map[string]string{}, map[string]string{}, "oracle", "", "default")
	ans["NewAnalysisRunFromTemplates"] = errString(err)
	if err == nil {
		ans["analysisRunCheck"] = analysisRunCheck(run.Spec)
	} else {
		ans["analysisRunCheck"] = nil
	}
	return ans
}

// templateAccepted: Argo validates metrics only in the AnalysisRun, after resolving arguments
// (analysis/analysis.go is the only caller of ValidateMetrics), never a template as written. So
// a template is judged by the run created from its own argument values; when an argument has no
// value there (the Rollout or Experiment supplies it), by the runs of the Rollouts that use it
// (`analysisRuns`), and on its own it counts as accepted.
func templateAccepted(v map[string]any) bool {
	if err, ok := v["NewAnalysisRunFromTemplates"].(string); ok {
		return strings.HasSuffix(err, " was not resolved")
	}
	return v["analysisRunCheck"] == nil
}

func runsAccepted(runs any) bool {
	list, _ := runs.([]any)
	for _, r := range list {
		entry := r.(map[string]any)
		if entry["error"] != nil || entry["analysisRunCheck"] != nil {
			return false
		}
	}
	return true
}

func opValidateAnalysisTemplate(raw []byte) (map[string]any, error) {
	var req struct {
		Template        *v1alpha1.AnalysisTemplate        `json:"template"`
		ClusterTemplate *v1alpha1.ClusterAnalysisTemplate `json:"clusterTemplate"`
		Args            []v1alpha1.Argument               `json:"args"`
	}
	if err := decode(raw, &req); err != nil {
		return nil, err
	}
	switch {
	case req.Template != nil:
		return templateVerdict([]*v1alpha1.AnalysisTemplate{req.Template}, nil, req.Template.Spec.Metrics, req.Args), nil
	case req.ClusterTemplate != nil:
		return templateVerdict(nil, []*v1alpha1.ClusterAnalysisTemplate{req.ClusterTemplate}, req.ClusterTemplate.Spec.Metrics, req.Args), nil
	}
	return nil, fmt.Errorf("template or clusterTemplate is required")
}

func opValidateAnalysisRun(raw []byte) (map[string]any, error) {
	var req struct {
		Run v1alpha1.AnalysisRun `json:"run"`
	}
	if err := decode(raw, &req); err != nil {
		return nil, err
	}
	return map[string]any{"analysisRunCheck": analysisRunCheck(req.Run.Spec)}, nil
}

func experimentVerdict(e *v1alpha1.Experiment) any {
	if cond := conditions.VerifyExperimentSpec(e, nil); cond != nil {
		return map[string]any{"reason": cond.Reason, "message": cond.Message}
	}
	return nil
}

func opValidateExperiment(raw []byte) (map[string]any, error) {
	var req struct {
		Experiment v1alpha1.Experiment `json:"experiment"`
	}
	if err := decode(raw, &req); err != nil {
		return nil, err
	}
	return map[string]any{"VerifyExperimentSpec": experimentVerdict(&req.Experiment)}, nil
}

// runLint runs `kubectl argo rollouts lint -f path` in process: its return value and the lines it
// prints (one per field error).
func runLint(path string) (lintErr any, lines []string, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	saved := os.Stdout
	os.Stdout = w
	var runErr error
	func() {
		defer func() {
			os.Stdout = saved
			w.Close()
		}()
		o := options.NewArgoRolloutsOptions(genericclioptions.IOStreams{In: bytes.NewReader(nil), Out: io.Discard, ErrOut: io.Discard})
		cmd := lint.NewCmdLint(o)
		cmd.SetArgs([]string{"-f", path})
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		cmd.SilenceErrors = true
		runErr = cmd.Execute()
	}()
	out := <-done
	r.Close()
	lines = []string{}
	for _, l := range bytes.Split(bytes.TrimRight(out, "\n"), []byte("\n")) {
		if len(l) > 0 {
			lines = append(lines, string(l))
		}
	}
	return errString(runErr), lines, nil
}

func opLint(raw []byte) (map[string]any, error) {
	var req struct {
		Path string `json:"path"`
	}
	if err := decode(raw, &req); err != nil {
		return nil, err
	}
	lintErr, lines, err := runLint(req.Path)
	if err != nil {
		return nil, err
	}
	return map[string]any{"error": lintErr, "output": lines}, nil
}

func opValidateManifestFile(raw []byte) (map[string]any, error) {
	var req struct {
		Path string `json:"path"`
	}
	if err := decode(raw, &req); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(req.Path)
	if err != nil {
		return nil, err
	}
	lintErr, lines, err := runLint(req.Path)
	if err != nil {
		return nil, err
	}
	ans := map[string]any{"lint": map[string]any{"error": lintErr, "output": lines}}

	// Split the documents the way lint does (go.yaml.in/yaml/v2 decoder, re-marshalled), then
	// decode each into Argo's types with sigs.k8s.io/yaml (not strict).
	type doc struct {
		index int
		bytes []byte
		un    unstructured.Unstructured
	}
	var docs []doc
	var c cluster
	dec := goyaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var value any
		if err := dec.Decode(&value); err != nil {
			if err != io.EOF {
				ans["yamlError"] = err.Error()
			}
			break
		}
		if value == nil {
			continue
		}
		b, err := goyaml.Marshal(value)
		if err != nil {
			ans["yamlError"] = err.Error()
			break
		}
		d := doc{index: i, bytes: b}
		if err := yaml.Unmarshal(b, &d.un.Object); err != nil {
			docs = append(docs, d)
			continue
		}
		docs = append(docs, d)
		switch d.un.GetKind() {
		case "Service":
			var s corev1.Service
			if yaml.Unmarshal(b, &s) == nil {
				c.Services = append(c.Services, s)
			}
		case "AnalysisTemplate":
			var t v1alpha1.AnalysisTemplate
			if yaml.Unmarshal(b, &t) == nil {
				c.AnalysisTemplates = append(c.AnalysisTemplates, t)
			}
		case "ClusterAnalysisTemplate":
			var t v1alpha1.ClusterAnalysisTemplate
			if yaml.Unmarshal(b, &t) == nil {
				c.ClusterAnalysisTemplates = append(c.ClusterAnalysisTemplates, t)
			}
		case "Ingress":
			var ing networkingv1.Ingress
			if d.un.GetAPIVersion() == "networking.k8s.io/v1" && yaml.Unmarshal(b, &ing) == nil {
				c.Ingresses = append(c.Ingresses, ing)
			}
		}
	}
	out := []any{}
	for _, d := range docs {
		kind := d.un.GetKind()
		entry := map[string]any{"index": d.index, "apiVersion": d.un.GetAPIVersion(), "kind": kind, "name": d.un.GetName()}
		if d.un.GetObjectKind().GroupVersionKind().Group != "argoproj.io" {
			entry["checked"] = false
			out = append(out, entry)
			continue
		}
		entry["checked"] = true
		var decErr error
		switch kind {
		case "Rollout":
			var ro v1alpha1.Rollout
			if decErr = yaml.Unmarshal(d.bytes, &ro); decErr == nil {
				errs := validation.ValidateRollout(ro.DeepCopy())
				entry["errors"] = fieldErrors(errs)
				controller := controllerValidation(ro.DeepCopy(), c)
				entry["controller"] = controller
				entry["accepted"] = len(errs) == 0
				entry["analysisRunsAccepted"] = runsAccepted(controller["analysisRuns"])
			}
		case "AnalysisTemplate":
			var t v1alpha1.AnalysisTemplate
			if decErr = yaml.Unmarshal(d.bytes, &t); decErr == nil {
				v := templateVerdict([]*v1alpha1.AnalysisTemplate{&t}, nil, t.Spec.Metrics, nil)
				entry["analysis"] = v
				entry["accepted"] = templateAccepted(v)
			}
		case "ClusterAnalysisTemplate":
			var t v1alpha1.ClusterAnalysisTemplate
			if decErr = yaml.Unmarshal(d.bytes, &t); decErr == nil {
				v := templateVerdict(nil, []*v1alpha1.ClusterAnalysisTemplate{&t}, t.Spec.Metrics, nil)
				entry["analysis"] = v
				entry["accepted"] = templateAccepted(v)
			}
		case "AnalysisRun":
			var r v1alpha1.AnalysisRun
			if decErr = yaml.Unmarshal(d.bytes, &r); decErr == nil {
				v := analysisRunCheck(r.Spec)
				entry["analysisRunCheck"] = v
				entry["accepted"] = v == nil
			}
		case "Experiment":
			var e v1alpha1.Experiment
			if decErr = yaml.Unmarshal(d.bytes, &e); decErr == nil {
				v := experimentVerdict(&e)
				entry["VerifyExperimentSpec"] = v
				entry["accepted"] = v == nil
			}
		default:
			entry["checked"] = false
		}
		if decErr != nil {
			entry["decodeError"] = decErr.Error()
			entry["accepted"] = false
		}
		out = append(out, entry)
	}
	ans["documents"] = out
	return ans, nil
}

func opModuleDir(raw []byte) (map[string]any, error) {
	dir, version, err := argoModule()
	if err != nil {
		return nil, err
	}
	return map[string]any{"dir": dir, "version": version}, nil
}
