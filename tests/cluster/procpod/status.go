package procpod

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// status is the pod status the kubelet would report now. Times are whole seconds, as on the
// wire, so an unchanged pod compares equal to what the API returns and is not rewritten.
func (p *Pod) status(old *corev1.PodStatus, now time.Time) *corev1.PodStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := old.DeepCopy()
	s.HostIP, s.HostIPs = p.hostIP, []corev1.HostIP{{IP: p.hostIP}}
	s.PodIP, s.PodIPs = p.ip, []corev1.PodIP{{IP: p.ip}}
	if s.StartTime == nil {
		t := metav1.NewTime(p.start.Truncate(time.Second))
		s.StartTime = &t
	}
	s.Reason, s.Message = "", ""
	cstatus := func(c *container) corev1.ContainerStatus {
		cs := corev1.ContainerStatus{Name: c.spec.Name, Image: c.spec.Image, ImageID: "process://" + c.spec.Image,
			State: *c.state.DeepCopy(), LastTerminationState: *c.last.DeepCopy(), RestartCount: c.restarts,
			Ready: c.ready, Started: new(c.started)}
		if c.img != nil {
			cs.ImageID = "process://" + c.img.Path
		}
		switch {
		case c.pid > 0:
			cs.ContainerID = containerID(c.pid)
		case c.state.Terminated != nil:
			cs.ContainerID = c.state.Terminated.ContainerID
		}
		return cs
	}
	s.InitContainerStatuses = nil
	initWaiting := []string{}
	initFailed := false
	for _, c := range p.init {
		s.InitContainerStatuses = append(s.InitContainerStatuses, cstatus(c))
		if t := c.state.Terminated; t != nil && t.ExitCode != 0 && p.pod.Spec.RestartPolicy == corev1.RestartPolicyNever && !c.sidecar {
			initFailed = true
		}
		if !c.sidecar && (c.state.Terminated == nil || c.state.Terminated.ExitCode != 0) {
			initWaiting = append(initWaiting, c.spec.Name)
		}
	}
	s.ContainerStatuses = nil
	var unready []string
	running, waiting, stopped, succeeded := 0, 0, 0, 0
	for _, c := range p.ctrs {
		s.ContainerStatuses = append(s.ContainerStatuses, cstatus(c))
		if !c.ready {
			unready = append(unready, c.spec.Name)
		}
		switch {
		case c.state.Running != nil:
			running++
		case c.state.Terminated != nil:
			stopped++
			if c.state.Terminated.ExitCode == 0 {
				succeeded++
			}
		case c.last.Terminated != nil:
			stopped++ // waiting to restart
		default:
			waiting++
		}
	}
	for _, c := range p.init {
		if c.sidecar && !c.ready {
			unready = append(unready, c.spec.Name)
		}
	}
	// The kubelet's getPhase (pkg/kubelet/kubelet_pods.go), for the cases that arise here.
	policy := p.pod.Spec.RestartPolicy
	switch {
	case initFailed:
		s.Phase = corev1.PodFailed
	case !p.initDone:
		s.Phase = corev1.PodPending
	case waiting > 0:
		s.Phase = corev1.PodPending
	case running > 0:
		s.Phase = corev1.PodRunning
	case stopped > 0:
		switch {
		case policy == corev1.RestartPolicyAlways:
			s.Phase = corev1.PodRunning
		case stopped == succeeded:
			s.Phase = corev1.PodSucceeded
		case policy == corev1.RestartPolicyOnFailure:
			s.Phase = corev1.PodRunning
		default:
			s.Phase = corev1.PodFailed
		}
	default:
		s.Phase = corev1.PodPending
	}
	terminal := s.Phase == corev1.PodSucceeded || s.Phase == corev1.PodFailed

	setCondition(s, corev1.PodReadyToStartContainers, corev1.ConditionTrue, "", "", now)
	if p.initDone || initFailed {
		setCondition(s, corev1.PodInitialized, corev1.ConditionTrue, "", "", now)
	} else {
		setCondition(s, corev1.PodInitialized, corev1.ConditionFalse, "ContainersNotInitialized",
			fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(initWaiting, " ")), now)
	}
	setCondition(s, corev1.PodScheduled, corev1.ConditionTrue, "", "", now)
	gatesReady := true
	var gates []string
	for _, g := range p.pod.Spec.ReadinessGates {
		if c := findCondition(s.Conditions, g.ConditionType); c == nil || c.Status != corev1.ConditionTrue {
			gatesReady = false
			gates = append(gates, string(g.ConditionType))
		}
	}
	ready := len(unready) == 0 && p.initDone && !terminal
	switch {
	case terminal:
		setCondition(s, corev1.ContainersReady, corev1.ConditionFalse, "PodCompleted", "", now)
		setCondition(s, corev1.PodReady, corev1.ConditionFalse, "PodCompleted", "", now)
	case !ready:
		msg := fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
		setCondition(s, corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", msg, now)
		setCondition(s, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", msg, now)
	case !gatesReady:
		setCondition(s, corev1.ContainersReady, corev1.ConditionTrue, "", "", now)
		setCondition(s, corev1.PodReady, corev1.ConditionFalse, "ReadinessGatesNotReady",
			fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", strings.Join(gates, ",")), now)
	default:
		setCondition(s, corev1.ContainersReady, corev1.ConditionTrue, "", "", now)
		setCondition(s, corev1.PodReady, corev1.ConditionTrue, "", "", now)
	}
	return s
}

func findCondition(conds []corev1.PodCondition, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// setCondition upserts a pod condition, moving lastTransitionTime only when the status flips.
func setCondition(s *corev1.PodStatus, t corev1.PodConditionType, status corev1.ConditionStatus, reason, msg string, now time.Time) {
	if c := findCondition(s.Conditions, t); c != nil {
		if c.Status != status {
			c.LastTransitionTime = metav1.NewTime(now.Truncate(time.Second))
		}
		c.Status, c.Reason, c.Message = status, reason, msg
		return
	}
	s.Conditions = append(s.Conditions, corev1.PodCondition{Type: t, Status: status, Reason: reason, Message: msg,
		LastTransitionTime: metav1.NewTime(now.Truncate(time.Second))})
}
