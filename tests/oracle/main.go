// Command argo-oracle runs Argo Rollouts' own Go functions (the module version pinned in go.mod)
// on inputs sent as JSON lines, so rollout-runner's tests can compare the engine with Argo.
//
// Protocol: one JSON object per line on stdin, {"op": "...", ...}; one JSON object per line on
// stdout for each request, in order: {"ok": true, ...} or {"ok": false, "error": "..."}
// ({"ok": false, "panic": "..."} when Argo's code panicked). A request's "id", if any, is echoed.
// Everything else Argo's code writes (logs, prints) goes to stderr. See README.md.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	log "github.com/sirupsen/logrus"
	"k8s.io/klog/v2"
)

// protocolOut is the real stdout; os.Stdout is pointed at stderr so that nothing Argo prints can
// corrupt the protocol stream.
var protocolOut = os.Stdout

type handler func(raw []byte) (map[string]any, error)

var handlers = map[string]handler{}

func register(op string, h handler) { handlers[op] = h }

func main() {
	os.Stdout = os.Stderr
	log.SetOutput(io.Discard)
	log.SetLevel(log.PanicLevel)
	klog.SetOutput(io.Discard)
	klog.LogToStderr(false)

	if err := serve(os.Stdin, protocolOut); err != nil {
		fmt.Fprintln(os.Stderr, "argo-oracle:", err)
		os.Exit(1)
	}
}

// serve answers every non-blank line of r with one line on w, flushing after each answer so a
// client can talk to the oracle request by request.
func serve(r io.Reader, w io.Writer) error {
	in := bufio.NewReaderSize(r, 1<<20)
	out := bufio.NewWriter(w)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 && !isBlank(line) {
			if encErr := enc.Encode(handle(line)); encErr != nil {
				// An answer that cannot be encoded must still produce one line.
				_ = enc.Encode(map[string]any{"ok": false, "error": "cannot encode answer: " + encErr.Error()})
			}
			if flushErr := out.Flush(); flushErr != nil {
				return flushErr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading stdin: %v", err)
		}
	}
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

func handle(line []byte) (answer map[string]any) {
	var head struct {
		Op string          `json:"op"`
		ID json.RawMessage `json:"id"`
	}
	defer func() {
		if r := recover(); r != nil {
			answer = map[string]any{"ok": false, "panic": fmt.Sprint(r), "stack": string(debug.Stack())}
		}
		if len(head.ID) > 0 {
			answer["id"] = head.ID
		}
	}()
	if err := json.Unmarshal(line, &head); err != nil {
		return map[string]any{"ok": false, "error": "bad request: " + err.Error()}
	}
	h, found := handlers[head.Op]
	if !found {
		return map[string]any{"ok": false, "error": fmt.Sprintf("unknown op %q", head.Op)}
	}
	res, err := h(line)
	if err != nil {
		return map[string]any{"ok": false, "error": err.Error()}
	}
	if res == nil {
		res = map[string]any{}
	}
	res["ok"] = true
	return res
}

// errString gives an error's text, or nil (JSON null) for no error.
func errString(err error) any {
	if err == nil {
		return nil
	}
	return err.Error()
}

// decode unmarshals a request line into v, with a protocol error on failure.
func decode(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("bad request: %v", err)
	}
	return nil
}
