// Command image-config prints the image config JSON (ENTRYPOINT, CMD, USER, WORKDIR, ENV) of
// a Dockerfile's final stage, the file `k8s-harness up --run-image NAME=PATH:CONFIG` reads.
//
//	go run ./imageconfig/cmd [--build-arg K=V]... DOCKERFILE
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/rollout-runner/rollout-runner/tests/cluster/imageconfig"
)

func main() {
	args := map[string]string{}
	var file string
	for a := os.Args[1:]; len(a) > 0; a = a[1:] {
		switch {
		case a[0] == "--build-arg" && len(a) > 1:
			k, v, _ := strings.Cut(a[1], "=")
			args[k] = v
			a = a[1:]
		case file == "" && !strings.HasPrefix(a[0], "-"):
			file = a[0]
		default:
			fmt.Fprintln(os.Stderr, "usage: image-config [--build-arg K=V]... DOCKERFILE")
			os.Exit(2)
		}
	}
	if file == "" {
		fmt.Fprintln(os.Stderr, "usage: image-config [--build-arg K=V]... DOCKERFILE")
		os.Exit(2)
	}
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	c, err := imageconfig.ParseDockerfile(f, args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
		os.Exit(1)
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	fmt.Println(string(b))
}
