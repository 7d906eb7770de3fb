package procpod

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ExecSpec is what the runtime hands the pod-exec helper (as JSON on fd 3): the helper runs
// as root in a fresh mount and UTS namespace (SysProcAttr.Unshareflags; Go makes the mount
// tree private first), mounts the pod's volumes, sets the hostname, changes to the working
// directory, drops to the container's user and execs the container's program.
type ExecSpec struct {
	Path     string   `json:"path"` // host executable
	Argv     []string `json:"argv"`
	Env      []string `json:"env"`
	Dir      string   `json:"dir"`
	Hostname string   `json:"hostname"`
	Mounts   []Mount  `json:"mounts"`
	UID      uint32   `json:"uid"`
	GID      uint32   `json:"gid"`
	Groups   []uint32 `json:"groups"`
}

type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
}

// ExecMain is `k8s-harness pod-exec`. It never returns on success (the process becomes the
// container); on failure it prints why to stderr (the container log) and exits 128, the
// code runtimes give a container that could not start.
func ExecMain() int {
	// Exec and the parent-death signal belong to the calling thread: keep them on one.
	runtime.LockOSThread()
	f := os.NewFile(3, "spec")
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return execFail("reading the spec: %v", err)
	}
	var s ExecSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return execFail("parsing the spec: %v", err)
	}
	for _, m := range s.Mounts {
		if err := bindMount(m); err != nil {
			return execFail("mounting %s at %s: %v", m.Source, m.Target, err)
		}
	}
	if s.Hostname != "" {
		if err := syscall.Sethostname([]byte(s.Hostname)); err != nil {
			return execFail("sethostname: %v", err)
		}
	}
	dir := s.Dir
	if dir == "" {
		dir = "/"
	}
	// Runtimes create a missing working directory.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return execFail("working directory %s: %v", dir, err)
	}
	if err := os.Chdir(dir); err != nil {
		return execFail("working directory %s: %v", dir, err)
	}
	// Open the program as root, exec it by descriptor after dropping privileges: the user
	// needs execute permission on the file only, not search permission on its directories
	// (a build tree under a private home directory).
	exe, err := openExecutable(s.Path)
	if err != nil {
		return execFail("%v", err)
	}
	groups := make([]int, len(s.Groups))
	for i, g := range s.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return execFail("setgroups: %v", err)
	}
	if err := syscall.Setgid(int(s.GID)); err != nil {
		return execFail("setgid %d: %v", s.GID, err)
	}
	if err := syscall.Setuid(int(s.UID)); err != nil {
		return execFail("setuid %d: %v", s.UID, err)
	}
	// A credential change clears the parent-death signal: set it again so the container
	// dies with the fake kubelet, and check the kubelet did not die in between.
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); e != 0 {
		return execFail("prctl: %v", e)
	}
	if os.Getppid() == 1 {
		return execFail("the fake kubelet is gone")
	}
	err = execveat(exe, s.Argv, s.Env)
	return execFail("exec %s: %v", s.Path, err)
}

func openExecutable(path string) (int, error) {
	// A script is run by its interpreter through /dev/fd/N: that descriptor must stay open.
	flags := unix.O_RDONLY
	head := make([]byte, 2)
	if f, err := os.Open(path); err == nil {
		n, _ := f.Read(head)
		f.Close()
		if n < 2 || string(head) != "#!" {
			flags |= unix.O_CLOEXEC
		}
	}
	fd, err := unix.Open(path, flags, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", path, err)
	}
	return fd, nil
}

func execveat(fd int, argv, env []string) error {
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return err
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return err
	}
	empty, _ := syscall.BytePtrFromString("")
	_, _, e := syscall.RawSyscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])), unix.AT_EMPTY_PATH, 0)
	return e
}

func execFail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "k8s-harness pod-exec: "+format+"\n", args...)
	return 128
}

func bindMount(m Mount) error {
	st, err := os.Stat(m.Source)
	if err != nil {
		return err
	}
	// The mount point is created in the host's file system (the mount namespace shares it):
	// empty directories or files stay behind there, the content is only seen by this pod.
	if st.IsDir() {
		if err := os.MkdirAll(m.Target, 0o755); err != nil {
			return err
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(m.Target), 0o755); err != nil {
			return err
		}
		if _, err := os.Stat(m.Target); os.IsNotExist(err) {
			f, err := os.OpenFile(m.Target, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			f.Close()
		}
	}
	if err := syscall.Mount(m.Source, m.Target, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return err
	}
	if m.ReadOnly {
		return syscall.Mount("", m.Target, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY|syscall.MS_REC, "")
	}
	return nil
}
