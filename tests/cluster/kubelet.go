package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-base/version"

	"github.com/rollout-runner/rollout-runner/tests/cluster/procpod"
)

// Fault-injection annotations, read from the pod (set them on a pod template and every pod
// of the workload carries them). Durations use Go syntax ("1.5s", "2m").
const (
	annReadyDelay   = "test.rollout-runner.io/ready-delay"   // ready after this delay instead of the default
	annNeverReady   = "test.rollout-runner.io/never-ready"   // "true": Running, never Ready
	annUnreadyAfter = "test.rollout-runner.io/unready-after" // Ready, then NotReady this long after becoming Ready
	annExitCode     = "test.rollout-runner.io/exit-code"     // exit code of a terminating pod (non-zero: phase Failed)
	annRunDuration  = "test.rollout-runner.io/run-duration"  // run time of a terminating pod before it exits
)

// podState is what the fake kubelet remembers about a pod it runs.
type podState struct {
	started time.Time // when the pod's containers started (phase Running)
	ip      string
}

type fakeKubelet struct {
	cs          kubernetes.Interface
	nodes       []string
	nodeIPs     map[string]string
	readyDelay  time.Duration
	runDuration time.Duration
	bind        bool
	pods        corelisters.PodLister
	q           workqueue.TypedRateLimitingInterface[string]

	mu     sync.Mutex
	state  map[types.UID]*podState
	nextIP uint32
	nextRR int

	proc     *procpod.Manager // nil without --run-image
	procOpts procpod.Options
	logsPort int // the container logs endpoint (process pods only)
}

func fakeKubeletMain(argv []string) int {
	fs := flag.NewFlagSet("fake-kubelet", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster (required)")
	nodes := fs.Int("nodes", 2, "number of fake nodes to register (fake-node-0 ...)")
	readyDelay := fs.Duration("pod-ready-delay", time.Second, "default delay between a pod starting to run and becoming Ready")
	runDuration := fs.Duration("pod-run-duration", time.Second, "default run time of pods that terminate (restartPolicy Never/OnFailure)")
	bind := fs.Bool("bind", false, "bind unscheduled pods to the fake nodes (when no kube-scheduler runs)")
	var runImages stringList
	fs.Var(&runImages, "run-image", "NAME=PATH[:CONFIG]: run containers of image NAME as host processes of PATH (repeatable; see README)")
	podCIDR := fs.String("process-pod-cidr", defaultProcessPodCIDR, "pod IPs of process pods (made local with a `local` route on lo unless in 127.0.0.0/8)")
	crashLoop := fs.Duration("crash-loop-backoff", 10*time.Second, "first CrashLoopBackOff delay of process pods (doubles up to 5m)")
	podsDir := fs.String("pods-dir", "", "directory for process pods' logs and volumes (default: pods/ beside the kubeconfig)")
	_ = fs.Parse(argv)
	if *kubeconfig == "" || *nodes < 1 {
		fmt.Fprintln(os.Stderr, "usage: k8s-harness fake-kubelet --kubeconfig FILE [--nodes N] [--pod-ready-delay D] [--pod-run-duration D] [--bind]")
		return 2
	}
	log.SetPrefix("fake-kubelet: ")
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	rc, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Print(err)
		return 1
	}
	rc.QPS, rc.Burst = 500, 1000
	rc.UserAgent = "fake-kubelet"
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	k := &fakeKubelet{
		cs:          kubernetes.NewForConfigOrDie(rc),
		nodeIPs:     map[string]string{},
		readyDelay:  *readyDelay,
		runDuration: *runDuration,
		bind:        *bind,
		state:       map[types.UID]*podState{},
	}
	for i := range *nodes {
		name := fmt.Sprintf("fake-node-%d", i)
		k.nodes = append(k.nodes, name)
		k.nodeIPs[name] = fmt.Sprintf("10.255.0.%d", i+1)
	}
	if len(runImages) > 0 {
		opts, err := processPodOptions(runImages, *podCIDR, *crashLoop, *podsDir, *kubeconfig, rc.Host)
		if err != nil {
			log.Print(err)
			return 1
		}
		opts.Client = k.cs
		k.procOpts = opts
		for _, ri := range opts.Images {
			cfg := ri.ConfigFile
			if cfg == "" {
				cfg = "none: ENTRYPOINT [PATH], root"
			}
			log.Printf("process pods: image %s runs %s (image config %s)", ri.Name, ri.Path, cfg)
		}
		log.Printf("process pods: IPs from %s, logs and volumes in %s", opts.IPs.Prefix(), opts.PodsDir)
	}
	if err := k.run(ctx); err != nil {
		log.Print(err)
		return 1
	}
	log.Print("stopped")
	return 0
}

func (k *fakeKubelet) run(ctx context.Context) error {
	var logsListener net.Listener
	if k.procOpts.IPs != nil {
		var err error
		if logsListener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
		k.logsPort = logsListener.Addr().(*net.TCPAddr).Port
	}
	for i, n := range k.nodes {
		if err := k.registerNode(ctx, i, n); err != nil {
			return fmt.Errorf("registering node %s: %w", n, err)
		}
	}
	log.Printf("registered nodes %v (default ready delay %s, run duration %s)", k.nodes, k.readyDelay, k.runDuration)
	f := informers.NewSharedInformerFactory(k.cs, 0)
	podInf := f.Core().V1().Pods()
	k.pods = podInf.Lister()
	k.q = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	if k.procOpts.IPs != nil {
		k.procOpts.Notify = func(key string) { k.q.Add(key) }
		k.proc = procpod.NewManager(k.procOpts)
		go k.serveContainerLogs(ctx, logsListener)
		log.Printf("process pods: container logs endpoint on 127.0.0.1:%d", k.logsPort)
	}
	enqueue := func(o any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(o); err == nil {
			k.q.Add(key)
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, o any) { enqueue(o) },
		DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), podInf.Informer().HasSynced) {
		return ctx.Err()
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				key, quit := k.q.Get()
				if quit {
					return
				}
				if err := k.syncPod(ctx, key); err != nil {
					if !apierrors.IsConflict(err) {
						log.Printf("sync %s: %v", key, err)
					}
					k.q.AddRateLimited(key)
				} else {
					k.q.Forget(key)
				}
				k.q.Done(key)
			}
		})
	}
	<-ctx.Done()
	k.q.ShutDown()
	wg.Wait()
	f.Shutdown()
	if k.proc != nil {
		k.proc.Shutdown(5 * time.Second)
	}
	return nil
}

func (k *fakeKubelet) registerNode(ctx context.Context, index int, name string) error {
	api := k.cs.CoreV1().Nodes()
	zone := string(rune('a' + index%3)) // three zones, as many clusters have
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"kubernetes.io/hostname":           name,
		"kubernetes.io/os":                 "linux",
		"kubernetes.io/arch":               "amd64",
		"topology.kubernetes.io/zone":      "fake-zone-" + zone,
		"node.kubernetes.io/instance-type": "fake",
	}}}
	n, err := api.Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		n, err = api.Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	if len(n.Spec.Taints) > 0 || n.Spec.Unschedulable {
		n.Spec.Taints, n.Spec.Unschedulable = nil, false
		if n, err = api.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	now := metav1.Now()
	capacity := nodeCapacity()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	addresses := []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: k.nodeIPs[name]},
		{Type: corev1.NodeHostName, Address: name},
	}
	var endpoints corev1.NodeDaemonEndpoints
	if k.logsPort > 0 {
		// Where the apiserver finds this "kubelet" for pods/log (it prefers InternalDNS).
		addresses = append(addresses, corev1.NodeAddress{Type: corev1.NodeInternalDNS, Address: "127.0.0.1"})
		endpoints.KubeletEndpoint.Port = int32(k.logsPort)
	}
	n.Status = corev1.NodeStatus{
		DaemonEndpoints: endpoints,
		Capacity:        capacity,
		Allocatable:     capacity,
		Phase:           corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady"),
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID"),
			cond(corev1.NodeNetworkUnavailable, corev1.ConditionFalse, "RouteCreated"),
		},
		Addresses: addresses,
		NodeInfo: corev1.NodeSystemInfo{
			MachineID: name, SystemUUID: name, BootID: name,
			KernelVersion: "fake", OSImage: "fake", ContainerRuntimeVersion: "fake://1.0",
			KubeletVersion: version.Get().GitVersion + "-fake", OperatingSystem: "linux", Architecture: "amd64",
		},
	}
	_, err = api.UpdateStatus(ctx, n, metav1.UpdateOptions{})
	return err
}

func nodeCapacity() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("64"),
		corev1.ResourceMemory:           resource.MustParse("256Gi"),
		corev1.ResourcePods:             resource.MustParse("1000"),
		corev1.ResourceEphemeralStorage: resource.MustParse("1Ti"),
	}
}

func (k *fakeKubelet) ownsNode(name string) bool {
	_, ok := k.nodeIPs[name]
	return ok
}

func (k *fakeKubelet) allocIP() string {
	n := k.nextIP
	k.nextIP = (k.nextIP + 1) % (256 * 254)
	return fmt.Sprintf("10.244.%d.%d", n/254, n%254+1)
}

func (k *fakeKubelet) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := k.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		if k.proc != nil && k.proc.Known(key) {
			k.proc.Remove(key) // deleted without grace (or by someone else): kill what is left
		}
		return nil
	} else if err != nil {
		return err
	}
	api := k.cs.CoreV1().Pods(ns)
	isProc := k.proc != nil && k.ownsNode(pod.Spec.NodeName) && (k.proc.Known(key) || k.proc.IsProcessPod(pod))
	switch {
	case pod.DeletionTimestamp != nil:
		if !k.ownsNode(pod.Spec.NodeName) {
			return nil
		}
		if isProc && !k.proc.Terminate(pod) {
			// SIGTERM sent; the pod's containers requeue it when they are gone (or SIGKILLed
			// after the grace period). Check again anyway, in case a deletion shortened it.
			k.q.AddAfter(key, time.Second)
			return nil
		}
		// A real kubelet stops the containers and then finishes the graceful deletion.
		err := api.Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		k.forget(pod.UID)
		if isProc {
			k.proc.Remove(key)
		}
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	case pod.Spec.NodeName == "":
		if !k.bind || pod.Spec.SchedulerName != corev1.DefaultSchedulerName {
			return nil
		}
		k.mu.Lock()
		node := k.nodes[k.nextRR%len(k.nodes)]
		k.nextRR++
		k.mu.Unlock()
		err := api.Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: node},
		}, metav1.CreateOptions{})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	case !k.ownsNode(pod.Spec.NodeName):
		return nil
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return nil
	}

	if isProc {
		status, err := k.proc.Status(pod, k.nodeIPs[pod.Spec.NodeName], time.Now())
		if err != nil {
			return err
		}
		if equality.Semantic.DeepEqual(*status, pod.Status) {
			return nil
		}
		upd := pod.DeepCopy()
		upd.Status = *status
		_, err = api.UpdateStatus(ctx, upd, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}

	status, next, err := k.desiredStatus(pod, time.Now())
	if err != nil {
		// A bad test annotation: leave the pod Pending with a message saying why.
		status = pod.Status.DeepCopy()
		status.Phase = corev1.PodPending
		status.Message = err.Error()
		status.Reason = "InvalidTestAnnotation"
		next = 0
	}
	if next > 0 {
		k.q.AddAfter(key, next)
	}
	if equality.Semantic.DeepEqual(*status, pod.Status) {
		return nil
	}
	upd := pod.DeepCopy()
	upd.Status = *status
	_, err = api.UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func (k *fakeKubelet) forget(uid types.UID) {
	k.mu.Lock()
	delete(k.state, uid)
	k.mu.Unlock()
}

// stateFor returns the remembered start of a pod, recovering it from the pod's status when
// this process did not start the pod itself (for example after a restart).
func (k *fakeKubelet) stateFor(pod *corev1.Pod, now time.Time) *podState {
	k.mu.Lock()
	defer k.mu.Unlock()
	if st, ok := k.state[pod.UID]; ok {
		return st
	}
	st := &podState{started: now, ip: pod.Status.PodIP}
	if pod.Status.StartTime != nil && pod.Status.Phase == corev1.PodRunning {
		st.started = pod.Status.StartTime.Time
	}
	if pod.Spec.HostNetwork {
		st.ip = k.nodeIPs[pod.Spec.NodeName]
	}
	if st.ip == "" {
		st.ip = k.allocIP()
	}
	k.state[pod.UID] = st
	return st
}

func annDuration(pod *corev1.Pod, name string, def time.Duration) (time.Duration, bool, error) {
	v, ok := pod.Annotations[name]
	if !ok {
		return def, false, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, true, fmt.Errorf("annotation %s=%q: want a non-negative Go duration such as 1.5s", name, v)
	}
	return d, true, nil
}

// desiredStatus computes the pod status a kubelet would report at now, and after how long
// the status changes next (0: never).
func (k *fakeKubelet) desiredStatus(pod *corev1.Pod, now time.Time) (*corev1.PodStatus, time.Duration, error) {
	readyDelay, _, err := annDuration(pod, annReadyDelay, k.readyDelay)
	if err != nil {
		return nil, 0, err
	}
	unreadyAfter, hasUnready, err := annDuration(pod, annUnreadyAfter, 0)
	if err != nil {
		return nil, 0, err
	}
	runDuration, _, err := annDuration(pod, annRunDuration, k.runDuration)
	if err != nil {
		return nil, 0, err
	}
	neverReady := false
	if v, ok := pod.Annotations[annNeverReady]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, 0, fmt.Errorf("annotation %s=%q: want true or false", annNeverReady, v)
		}
		neverReady = b
	}
	exitCode := 0
	if v, ok := pod.Annotations[annExitCode]; ok {
		c, err := strconv.Atoi(v)
		if err != nil || c < 0 || c > 255 {
			return nil, 0, fmt.Errorf("annotation %s=%q: want an integer 0..255", annExitCode, v)
		}
		exitCode = c
	}

	st := k.stateFor(pod, now)
	var next time.Duration
	soonest := func(at time.Time) {
		if d := at.Sub(now); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}

	terminates := pod.Spec.RestartPolicy == corev1.RestartPolicyNever || pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure
	exitAt := st.started.Add(runDuration)
	exited := terminates && !now.Before(exitAt)
	if terminates && !exited {
		soonest(exitAt)
	}

	readyAt := st.started.Add(readyDelay)
	unreadyAt := readyAt.Add(unreadyAfter)
	containersReady := !neverReady && !exited && !now.Before(readyAt) && !(hasUnready && !now.Before(unreadyAt))
	if !neverReady && !exited {
		soonest(readyAt)
		if hasUnready {
			soonest(unreadyAt)
		}
	}

	s := pod.Status.DeepCopy()
	nodeIP := k.nodeIPs[pod.Spec.NodeName]
	s.HostIP, s.HostIPs = nodeIP, []corev1.HostIP{{IP: nodeIP}}
	s.PodIP, s.PodIPs = st.ip, []corev1.PodIP{{IP: st.ip}}
	started := secs(st.started)
	if s.StartTime == nil {
		s.StartTime = &started
	}
	s.Reason, s.Message = "", ""

	if exited {
		s.Phase = corev1.PodSucceeded
		if exitCode != 0 {
			s.Phase = corev1.PodFailed
		}
	} else {
		s.Phase = corev1.PodRunning
	}
	reason := "Completed"
	if exitCode != 0 {
		reason = "Error"
	}
	finished := secs(exitAt)
	s.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "fake://" + c.Image,
			ContainerID: containerID(pod, c.Name)}
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways && !exited {
			// A sidecar: runs alongside the main containers.
			cs.Ready, cs.Started = containersReady, new(true)
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: started}
		} else {
			cs.Ready, cs.Started = true, new(false)
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: started, FinishedAt: started}
		}
		s.InitContainerStatuses = append(s.InitContainerStatuses, cs)
	}
	s.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "fake://" + c.Image,
			ContainerID: containerID(pod, c.Name)}
		if exited {
			cs.Started = new(false)
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: int32(exitCode), Reason: reason,
				StartedAt: started, FinishedAt: finished}
		} else {
			cs.Ready, cs.Started = containersReady, new(true)
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: started}
		}
		s.ContainerStatuses = append(s.ContainerStatuses, cs)
	}

	gatesReady := true
	for _, g := range pod.Spec.ReadinessGates {
		c := findCondition(s.Conditions, g.ConditionType)
		if c == nil || c.Status != corev1.ConditionTrue {
			gatesReady = false
		}
	}
	tf := func(b bool) corev1.ConditionStatus {
		if b {
			return corev1.ConditionTrue
		}
		return corev1.ConditionFalse
	}
	notReadyReason := "ContainersNotReady"
	if exited {
		notReadyReason = "PodCompleted"
	}
	setCondition(s, corev1.PodReadyToStartContainers, corev1.ConditionTrue, "", now)
	setCondition(s, corev1.PodInitialized, corev1.ConditionTrue, "", now)
	setCondition(s, corev1.PodScheduled, corev1.ConditionTrue, "", now)
	if containersReady {
		setCondition(s, corev1.ContainersReady, corev1.ConditionTrue, "", now)
	} else {
		setCondition(s, corev1.ContainersReady, corev1.ConditionFalse, notReadyReason, now)
	}
	switch {
	case containersReady && gatesReady:
		setCondition(s, corev1.PodReady, corev1.ConditionTrue, "", now)
	case containersReady:
		setCondition(s, corev1.PodReady, corev1.ConditionFalse, "ReadinessGatesNotReady", now)
	default:
		setCondition(s, corev1.PodReady, tf(false), notReadyReason, now)
	}
	return s, next, nil
}

func containerID(pod *corev1.Pod, name string) string {
	return fmt.Sprintf("fake://%s/%s", pod.UID, name)
}

// secs drops sub-second precision (and the monotonic clock), as the API does on the wire,
// so that a status the kubelet computes compares equal to the one it reads back.
func secs(t time.Time) metav1.Time { return metav1.NewTime(t.Truncate(time.Second)) }

func findCondition(conds []corev1.PodCondition, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// setCondition upserts a pod condition, moving lastTransitionTime only when the status flips.
func setCondition(s *corev1.PodStatus, t corev1.PodConditionType, status corev1.ConditionStatus, reason string, now time.Time) {
	if c := findCondition(s.Conditions, t); c != nil {
		if c.Status != status {
			c.LastTransitionTime = secs(now)
		}
		c.Status, c.Reason = status, reason
		return
	}
	s.Conditions = append(s.Conditions, corev1.PodCondition{Type: t, Status: status, Reason: reason, LastTransitionTime: secs(now)})
}

// defaultProcessPodCIDR: not in 127.0.0.0/8, because the apiserver rejects loopback
// addresses in EndpointSlices (and Endpoints): ValidateEndpointIP in
// k8s.io/kubernetes pkg/apis/core/validation, called by pkg/apis/discovery/validation.
// A `local` route makes the whole range local to this machine, as 127.0.0.0/8 is.
const defaultProcessPodCIDR = "10.250.0.0/16"

func processPodOptions(specs []string, cidr string, crashLoop time.Duration, podsDir, kubeconfig, server string) (procpod.Options, error) {
	var o procpod.Options
	if os.Geteuid() != 0 {
		return o, fmt.Errorf("--run-image needs root (mount namespaces, bind mounts, setuid, a local route)")
	}
	for _, s := range specs {
		ri, err := procpod.ParseRunImage(s)
		if err != nil {
			return o, err
		}
		o.Images = append(o.Images, ri)
	}
	ips, err := procpod.NewIPAllocator(cidr)
	if err != nil {
		return o, fmt.Errorf("--process-pod-cidr: %w", err)
	}
	if err := ensureLocalRoute(ips.Prefix()); err != nil {
		return o, err
	}
	o.IPs = ips
	if podsDir == "" {
		podsDir = filepath.Join(filepath.Dir(kubeconfig), "pods")
	}
	if o.PodsDir, err = filepath.Abs(podsDir); err != nil {
		return o, err
	}
	if err := os.MkdirAll(o.PodsDir, 0o755); err != nil {
		return o, err
	}
	if o.Self, err = os.Executable(); err != nil {
		return o, err
	}
	u, err := url.Parse(server)
	if err != nil {
		return o, err
	}
	o.APIHost, o.APIPort = u.Hostname(), u.Port()
	if o.APIPort == "" {
		o.APIPort = "443"
	}
	o.CrashLoopBase, o.CrashLoopMax = crashLoop, 5*time.Minute
	o.NodeAllocatable = nodeCapacity()
	return o, nil
}

// ensureLocalRoute makes every address of the prefix local (`ip route add local P dev lo`,
// the "AnyIP" route), so processes can bind pod IPs and everyone on the machine reach them.
// It stays after the harness stops (other harnesses may share it); remove it with
// `ip route del local P dev lo`.
func ensureLocalRoute(p netip.Prefix) error {
	if netip.MustParsePrefix("127.0.0.0/8").Overlaps(p) {
		log.Printf("process pods: %s is loopback: pods get IPs, but the apiserver rejects them in EndpointSlices", p)
		return nil
	}
	out, err := exec.Command("ip", "route", "show", "table", "local", "type", "local", p.String()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip route show: %v: %s", err, out)
	}
	if strings.Contains(string(out), p.String()) {
		return nil
	}
	if out, err := exec.Command("ip", "route", "add", "local", p.String(), "dev", "lo").CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "File exists") {
		return fmt.Errorf("ip route add local %s dev lo: %v: %s", p, err, out)
	}
	log.Printf("process pods: added route `local %s dev lo`", p)
	return nil
}
