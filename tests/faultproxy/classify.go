package main

import (
	"net/http"
	"net/url"
	"strings"
)

// reqInfo is what the rules match on: the Kubernetes verb and resource of a request,
// derived the way the apiserver's RequestInfoFactory does it
// (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go).
type reqInfo struct {
	Resource    bool   // a resource request (not /healthz, /version, discovery...)
	Verb        string // get list watch create update patch delete deletecollection, or the lower-case method
	Group       string // "" for the core group
	Version     string
	Namespace   string
	ResourceN   string // plural resource, e.g. rollouts
	Subresource string // e.g. status
	Name        string
	RV          string // resourceVersion query parameter
	Watch       bool
}

// resourcePath is "rollouts" or "rollouts/status"; "" for non-resource requests.
func (ri reqInfo) resourcePath() string {
	if ri.Subresource != "" {
		return ri.ResourceN + "/" + ri.Subresource
	}
	return ri.ResourceN
}

// qualified is the group-qualified resource the apiserver puts in error messages: "rollouts.argoproj.io", "pods".
func (ri reqInfo) qualified() string {
	if ri.Group == "" {
		return ri.ResourceN
	}
	return ri.ResourceN + "." + ri.Group
}

// canConflict: the writes that carry a resourceVersion precondition (a create fails with
// AlreadyExists instead, never with a Conflict).
func (ri reqInfo) canConflict() bool {
	switch ri.Verb {
	case "update", "patch", "delete":
		return true
	}
	return false
}

// queryBool parses a boolean query parameter as the apiserver does
// (apimachinery runtime.Convert_Slice_string_To_bool): present and not "0"/"false" is true.
func queryBool(q url.Values, key string) bool {
	v, ok := q[key]
	if !ok || len(v) == 0 {
		return false
	}
	return !(v[0] == "0" || strings.EqualFold(v[0], "false"))
}

// namespaceSubresources are subresources of a namespace, not resources inside it.
var namespaceSubresources = map[string]bool{"status": true, "finalize": true}

func classify(method string, u *url.URL) reqInfo {
	ri := reqInfo{Verb: strings.ToLower(method)}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	q := u.Query()
	ri.RV = q.Get("resourceVersion")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		ri.Version = parts[1]
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		ri.Group, ri.Version = parts[1], parts[2]
		parts = parts[3:]
	default:
		return ri // non-resource: /healthz, /version, /openapi/v2, /apis
	}
	if len(parts) == 0 || parts[0] == "" {
		return reqInfo{Verb: ri.Verb, Group: ri.Group, Version: ri.Version} // discovery of a group version
	}
	ri.Resource = true
	verbFromPath := ""
	if parts[0] == "watch" || parts[0] == "proxy" { // deprecated /api/v1/watch/... paths
		verbFromPath = parts[0]
		parts = parts[1:]
		if len(parts) == 0 {
			return reqInfo{Verb: ri.Verb}
		}
	}
	if parts[0] == "namespaces" && len(parts) > 1 {
		ri.Namespace = parts[1]
		if len(parts) > 2 && !namespaceSubresources[parts[2]] {
			parts = parts[2:]
		}
	}
	ri.ResourceN = parts[0]
	if len(parts) > 1 {
		ri.Name = parts[1]
	}
	if len(parts) > 2 {
		ri.Subresource = parts[2]
	}
	if verbFromPath != "" {
		ri.Verb = verbFromPath
		ri.Watch = verbFromPath == "watch"
		return ri
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		ri.Verb = "get"
		if ri.Name == "" {
			ri.Verb = "list"
			if queryBool(q, "watch") {
				ri.Verb, ri.Watch = "watch", true
			}
			// kube-rs and client-go watch one object with fieldSelector=metadata.name=NAME.
			for _, term := range strings.Split(q.Get("fieldSelector"), ",") {
				if n, ok := strings.CutPrefix(term, "metadata.name=="); ok {
					ri.Name = n
				} else if n, ok := strings.CutPrefix(term, "metadata.name="); ok {
					ri.Name = n
				}
			}
		}
	case http.MethodPost:
		ri.Verb = "create"
	case http.MethodPut:
		ri.Verb = "update"
	case http.MethodPatch:
		ri.Verb = "patch"
	case http.MethodDelete:
		ri.Verb = "delete"
		if ri.Name == "" {
			ri.Verb = "deletecollection"
		}
	}
	return ri
}
