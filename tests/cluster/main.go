// Command k8s-harness is rollout-runner's test control plane: one binary, busybox style,
// that runs the upstream Kubernetes components (built from the k8s.io/kubernetes module)
// plus a supervisor and a fake kubelet.
//
//	k8s-harness up --dir D [flags]              supervisor: etcd, apiserver, KCM, scheduler, fake kubelet
//	k8s-harness restart --dir D [flags] NAME    restart one component of a running `up` (restart.go)
//	k8s-harness kube-apiserver [flags]          upstream kube-apiserver command
//	k8s-harness kube-controller-manager [flags] upstream kube-controller-manager command
//	k8s-harness kube-scheduler [flags]          upstream kube-scheduler command
//	k8s-harness fake-kubelet [flags]            nodes + pod lifecycle without containers
//	k8s-harness stage-crds --pins F --out D     copy pinned upstream CRDs out of the module cache
//	k8s-harness free-ports N                    print N free loopback TCP ports, one a line
//	k8s-harness pod-exec                        (internal) start a process pod's container
//
// Each component runs in its own OS process (the supervisor re-executes this binary), so
// the process-wide state of the upstream commands (one-shot signal handler, logging,
// feature gates) never clashes.
package main

import (
	"fmt"
	"os"
	"strconv"
	_ "time/tzdata" // CronJob time zones, as in the upstream mains

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/rollout-runner/rollout-runner/tests/cluster/procpod"
)

const usage = `usage: k8s-harness COMMAND [flags]

commands:
  up                       start the whole control plane (see: k8s-harness up --help)
  restart                  restart one component of a running control plane (kube-apiserver, etcd, ...)
  fake-kubelet             run only the fake kubelet against a kubeconfig
  stage-crds               copy pinned upstream CRDs from the Go module cache
  free-ports N             print N free loopback TCP ports (for scripts)
  kube-apiserver           the upstream kube-apiserver
  kube-controller-manager  the upstream kube-controller-manager
  kube-scheduler           the upstream kube-scheduler
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	sub, args := os.Args[1], os.Args[2:]
	// Construct ONLY the command this process runs: NewAPIServerCommand() installs the
	// process-wide one-shot signal handler while it is being constructed.
	var upstream func() *cobra.Command
	switch sub {
	case "up":
		os.Exit(up(args))
	case "restart":
		os.Exit(restartMain(args))
	case "fake-kubelet":
		os.Exit(fakeKubeletMain(args))
	case "pod-exec":
		os.Exit(procpod.ExecMain())
	case "stage-crds":
		os.Exit(stageCRDsMain(args))
	case "free-ports":
		n := 1
		if len(args) == 1 {
			if v, err := strconv.Atoi(args[0]); err == nil && v > 0 {
				n = v
			}
		}
		ports, err := freePorts(n)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, p := range ports {
			fmt.Println(p)
		}
		os.Exit(0)
	case "kube-apiserver":
		upstream = apiserver.NewAPIServerCommand
	case "kube-controller-manager":
		upstream = kcm.NewControllerManagerCommand
	case "kube-scheduler":
		upstream = func() *cobra.Command { return scheduler.NewSchedulerCommand() }
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n%s", sub, usage)
		os.Exit(2)
	}
	c := upstream()
	c.SetArgs(args)
	os.Exit(cli.Run(c))
}
