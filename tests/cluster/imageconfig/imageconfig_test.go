package imageconfig

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// The repository's own Dockerfile is the source of truth for the image the test cluster runs
// as a process pod: a change to its final stage must show up here.
func TestRepositoryDockerfile(t *testing.T) {
	f, err := os.Open("../../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, arch := range []string{"amd64", "arm64"} {
		f.Seek(0, 0)
		c, err := ParseDockerfile(f, map[string]string{"TARGETARCH": arch})
		if err != nil {
			t.Fatal(err)
		}
		want := Config{
			Entrypoint: []string{"/usr/local/bin/rollout-runner"},
			User:       "65532:65532",
			Env:        []string{"PATH=/usr/local/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		}
		if !reflect.DeepEqual(c, want) {
			t.Fatalf("TARGETARCH=%s: got %+v, want %+v", arch, c, want)
		}
		if c.MainBinary() != "/usr/local/bin/rollout-runner" {
			t.Fatalf("main binary %q", c.MainBinary())
		}
	}
}

func TestParseDockerfile(t *testing.T) {
	const df = `# syntax=docker/dockerfile:1
ARG BASE=scratch
FROM golang:1 AS build
RUN go build
FROM ${BASE} AS base
ENV A=1 B="two words" \
    C=$A-x
ENV LEGACY value with spaces
WORKDIR /srv
CMD ["serve", "--port", "80"]
USER app
FROM base
ARG UID=1000
WORKDIR data
USER ${UID}:${UID}
ENTRYPOINT /bin/app --flag
`
	c, err := ParseDockerfile(strings.NewReader(df), map[string]string{"UID": "4242"})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		// The CMD was inherited from the base stage, so ENTRYPOINT drops it (Docker semantics).
		Entrypoint: []string{"/bin/sh", "-c", "/bin/app --flag"},
		User:       "4242:4242",
		WorkingDir: "/srv/data",
		Env:        []string{"A=1", "B=two words", "C=-x", "LEGACY=value with spaces"},
	}
	// C=$A-x sees A as it was before the instruction: unset.
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}

	if _, err := ParseDockerfile(strings.NewReader("FROM busybox\nUSER 1\n"), nil); err == nil {
		t.Fatal("an external base image must be an error: its config is unknown")
	}
	c, err = ParseDockerfile(strings.NewReader("FROM scratch\nCMD [\"a\"]\nENTRYPOINT [\"b\"]\n"), nil)
	if err != nil || !reflect.DeepEqual(c.Cmd, []string{"a"}) || c.MainBinary() != "b" {
		t.Fatalf("a CMD of the same stage survives ENTRYPOINT: %+v %v", c, err)
	}
}
