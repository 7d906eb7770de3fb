package main

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/utils/defaults"
	replicasetutil "github.com/argoproj/argo-rollouts/utils/replicaset"
	rolloututil "github.com/argoproj/argo-rollouts/utils/rollout"
	"github.com/argoproj/argo-rollouts/utils/weightutil"
)

func init() {
	register("basicCanaryCounts", opBasicCanaryCounts)
	register("trafficRoutedCanaryCounts", opTrafficRoutedCanaryCounts)
	register("canaryHelpers", opCanaryHelpers)
	register("rolloutPhase", opRolloutPhase)
}

// canaryRequest is the shared input of the replica-count ops. ReplicaSets are Kubernetes
// apps/v1 ReplicaSet objects; spec.replicas must be set (Argo dereferences it).
type canaryRequest struct {
	Rollout  v1alpha1.Rollout         `json:"rollout"`
	NewRS    *appsv1.ReplicaSet       `json:"newRS"`
	StableRS *appsv1.ReplicaSet       `json:"stableRS"`
	OtherRSs []*appsv1.ReplicaSet     `json:"otherRSs"`
	Weights  *v1alpha1.TrafficWeights `json:"weights"`
	Desired  *int32                   `json:"desiredWeight"`
}

func (r *canaryRequest) checkRSs() error {
	for name, rs := range map[string]*appsv1.ReplicaSet{"newRS": r.NewRS, "stableRS": r.StableRS} {
		if rs != nil && rs.Spec.Replicas == nil {
			return fmt.Errorf("%s.spec.replicas is required", name)
		}
	}
	for i, rs := range r.OtherRSs {
		if rs != nil && rs.Spec.Replicas == nil {
			return fmt.Errorf("otherRSs[%d].spec.replicas is required", i)
		}
	}
	return nil
}

func opBasicCanaryCounts(raw []byte) (map[string]any, error) {
	var req canaryRequest
	if err := decode(raw, &req); err != nil {
		return nil, err
	}
	if err := req.checkRSs(); err != nil {
		return nil, err
	}
	n, s := replicasetutil.CalculateReplicaCountsForBasicCanary(&req.Rollout, req.NewRS, req.StableRS, req.OtherRSs)
	return map[string]any{"new": n, "stable": s}, nil
}

func opTrafficRoutedCanaryCounts(raw []byte) (map[string]any, error) {
	var req canaryRequest
	if err := decode(raw, &req); err != nil {
		return nil, err
	}
	if err := req.checkRSs(); err != nil {
		return nil, err
	}
	n, s := replicasetutil.CalculateReplicaCountsForTrafficRoutedCanary(&req.Rollout, req.NewRS, req.StableRS, req.Weights)
	return map[string]any{"new": n, "stable": s}, nil
}

// guarded runs f and turns a panic into {"panic": "..."}, so one helper that dereferences a nil
// field does not hide the others.
func guarded(f func() any) (v any) {
	defer func() {
		if r := recover(); r != nil {
			v = map[string]any{"panic": fmt.Sprint(r)}
		}
	}()
	return f()
}

func opCanaryHelpers(raw []byte) (map[string]any, error) {
	var req canaryRequest
	if err := decode(raw, &req); err != nil {
		return nil, err
	}
	if err := req.checkRSs(); err != nil {
		return nil, err
	}
	ro := &req.Rollout
	allRSs := []*appsv1.ReplicaSet{}
	for _, rs := range append([]*appsv1.ReplicaSet{req.NewRS, req.StableRS}, req.OtherRSs...) {
		if rs != nil {
			allRSs = append(allRSs, rs)
		}
	}
	ans := map[string]any{
		"GetCurrentCanaryStep": guarded(func() any {
			step, idx := replicasetutil.GetCurrentCanaryStep(ro)
			return map[string]any{"step": step, "index": idx}
		}),
		"GetCurrentSetWeight": guarded(func() any { return replicasetutil.GetCurrentSetWeight(ro) }),
		"UseSetCanaryScale":   guarded(func() any { return replicasetutil.UseSetCanaryScale(ro) }),
		"GetCanaryReplicasOrWeight": guarded(func() any {
			replicas, weight := replicasetutil.GetCanaryReplicasOrWeight(ro, req.NewRS, req.StableRS)
			return map[string]any{"replicas": replicas, "weight": weight}
		}),
		"GetDesiredCanaryWeight": guarded(func() any { return replicasetutil.GetDesiredCanaryWeight(ro, req.NewRS, req.StableRS) }),
		"MaxTrafficWeight":       guarded(func() any { return weightutil.MaxTrafficWeight(ro) }),
		"MaxSurge":               guarded(func() any { return replicasetutil.MaxSurge(ro) }),
		"MaxUnavailable":         guarded(func() any { return replicasetutil.MaxUnavailable(ro) }),
		"BeforeStartingStep":     guarded(func() any { return replicasetutil.BeforeStartingStep(ro) }),
		"GetCurrentExperimentStep": guarded(func() any {
			return replicasetutil.GetCurrentExperimentStep(ro)
		}),
		"CheckStableRSExists": guarded(func() any { return replicasetutil.CheckStableRSExists(req.NewRS, req.StableRS) }),
		"NewRSNewReplicas": guarded(func() any {
			if req.NewRS == nil {
				return nil
			}
			n, err := replicasetutil.NewRSNewReplicas(ro, allRSs, req.NewRS, req.Weights)
			return map[string]any{"replicas": n, "error": errString(err)}
		}),
		"AtDesiredReplicaCountsForCanary": guarded(func() any {
			if req.NewRS == nil {
				return nil
			}
			return replicasetutil.AtDesiredReplicaCountsForCanary(ro, req.NewRS, req.StableRS, req.OtherRSs, req.Weights)
		}),
		"GetReplicasOrDefault":                guarded(func() any { return defaults.GetReplicasOrDefault(ro.Spec.Replicas) }),
		"GetScaleDownDelaySecondsOrDefault":   guarded(func() any { return defaults.GetScaleDownDelaySecondsOrDefault(ro).Seconds() }),
		"GetProgressDeadlineSecondsOrDefault": guarded(func() any { return defaults.GetProgressDeadlineSecondsOrDefault(ro) }),
		"GetAutoPromotionEnabledOrDefault":    guarded(func() any { return defaults.GetAutoPromotionEnabledOrDefault(ro) }),
		"GetAbortScaleDownDelaySecondsOrDefault": guarded(func() any {
			d, wasSet := defaults.GetAbortScaleDownDelaySecondsOrDefault(ro)
			var secs any
			if d != nil {
				secs = d.Seconds()
			}
			return map[string]any{"seconds": secs, "wasSet": wasSet}
		}),
		"IsFullyPromoted": guarded(func() any { return rolloututil.IsFullyPromoted(ro) }),
		"IsDynamicallyRollingBackToStable": guarded(func() any {
			if req.NewRS == nil {
				return nil
			}
			ok, hash := rolloututil.IsDynamicallyRollingBackToStable(ro, req.NewRS)
			return map[string]any{"value": ok, "hash": hash}
		}),
		"AbortOrDynamicRollbackToStable": guarded(func() any {
			return rolloututil.AbortOrDynamicRollbackToStable(ro, allRSs, ro.Status.StableRS)
		}),
		"CanaryStepString": guarded(func() any {
			out := []string{}
			if ro.Spec.Strategy.Canary != nil {
				for _, s := range ro.Spec.Strategy.Canary.Steps {
					out = append(out, rolloututil.CanaryStepString(s))
				}
			}
			return out
		}),
	}
	if req.Desired != nil {
		ans["ShouldVerifyWeight"] = guarded(func() any { return rolloututil.ShouldVerifyWeight(ro, *req.Desired) })
	}
	return ans, nil
}

func opRolloutPhase(raw []byte) (map[string]any, error) {
	var req struct {
		Rollout v1alpha1.Rollout `json:"rollout"`
	}
	if err := decode(raw, &req); err != nil {
		return nil, err
	}
	phase, msg := rolloututil.GetRolloutPhase(&req.Rollout)
	cPhase, cMsg := rolloututil.CalculateRolloutPhase(req.Rollout.Spec, req.Rollout.Status)
	return map[string]any{
		"phase": phase, "message": msg,
		"CalculateRolloutPhase": map[string]any{"phase": cPhase, "message": cMsg},
	}, nil
}
