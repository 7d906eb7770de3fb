package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

const argoPath = "github.com/argoproj/argo-rollouts"

// moduleDir is stamped by ./build (-X main.moduleDir=...): the argo-rollouts module's directory in
// the Go module cache, where Argo's examples/ and test/e2e manifests are.
var moduleDir string

func argoModule() (dir, version string, err error) {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == argoPath {
				version = d.Version
			}
		}
	}
	if moduleDir == "" {
		return "", version, fmt.Errorf("binary built without the module directory stamp (use tests/oracle/build)")
	}
	if _, err := os.Stat(moduleDir + "/go.mod"); err != nil {
		return "", version, fmt.Errorf("module directory %s is gone (module cache cleaned?): %v", moduleDir, err)
	}
	return moduleDir, version, nil
}
