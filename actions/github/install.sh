#!/usr/bin/env bash
# The action's install step: put a rollout-runner binary in the runner's tool cache and say
# where it is (step outputs `binary` and `version`; its directory is added to PATH).
#
#   1. input `binary`: that file, nothing installed;
#   2. input `version`, or the action's ref when it is a release (v0.1.0, or a moving v0 / v0.1:
#      then the version is the workspace version of the action's own checkout): the release
#      archive for this runner's OS and architecture, checked against the release's SHA256SUMS,
#      from input `release-url`, else $ROLLOUT_RUNNER_RELEASE_URL, else the GitHub release;
#   3. any other ref (a branch, a commit): built from the action's checkout with cargo.
#
# Cached in $RUNNER_TOOL_CACHE/rollout-runner/VERSION/ARCH (a source build under src-HASH), so
# a self-hosted runner downloads or builds each version once.
set -euo pipefail

fail() {
  printf '::error title=rollout-runner install::%s\n' "$1"
  exit 1
}
put() { printf '%s=%s\n' "$1" "$2" >> "${GITHUB_OUTPUT:-/dev/null}"; }
sha256() {
  if command -v sha256sum > /dev/null; then sha256sum "$@"; else shasum -a 256 "$@"; fi
}
done_with() { # the binary
  local version
  version=$("$1" --version 2> /dev/null | awk '{print $2}') || true
  echo "rollout-runner: using $1 (${version:-unknown version})"
  put binary "$1"
  put version "$version"
  [ -z "${GITHUB_PATH:-}" ] || dirname "$1" >> "$GITHUB_PATH"
  exit 0
}

src=$(cd "${GITHUB_ACTION_PATH:?}/../.." && pwd)

if [ -n "${RR_BINARY:-}" ]; then
  bin=$RR_BINARY
  { [ -f "$bin" ] && [ -x "$bin" ]; } || fail "binary: \`$bin\` is not an executable file"
  done_with "$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
fi

case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
  Linux/X64) target=x86_64-unknown-linux-musl ;;
  Linux/ARM64) target=aarch64-unknown-linux-musl ;;
  macOS/X64) target=x86_64-apple-darwin ;;
  macOS/ARM64) target=aarch64-apple-darwin ;;
  *) fail "no release for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}: runners on Linux or macOS (x64, arm64) only; or give the binary input" ;;
esac
arch=$(tr '[:upper:]' '[:lower:]' <<< "$RUNNER_ARCH")
cache=${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-/tmp}}/rollout-runner

# The version of the workspace at DIR ([workspace.package] version, else the package that
# builds the binary).
workspace_version() {
  awk '/^\[/{section=$0} section=="[workspace.package]" && /^version *=/{gsub(/"/,"",$3); print $3; exit}' "$1/Cargo.toml"
}
package_dir() { # the directory of the package with the rollout-runner binary
  local manifest
  for manifest in "$1/Cargo.toml" "$1"/*/Cargo.toml "$1"/*/*/Cargo.toml; do
    [ -f "$manifest" ] || continue
    if awk '/^\[/{section=$0} (section=="[package]" || section=="[[bin]]") && /^name *= *"rollout-runner"/{found=1} END{exit !found}' "$manifest"; then
      dirname "$manifest"
      return
    fi
  done
  return 1
}

version=${RR_VERSION#v}
if [ -z "$version" ]; then
  ref=${RR_ACTION_REF:-}
  # github.action_ref is not promised in composite actions: the runner checks actions out
  # at _actions/OWNER/REPO/REF, so the directory names the ref.
  if [ -z "$ref" ] && [[ $src == */_actions/*/*/* ]]; then ref=$(basename "$src"); fi
  if [[ $ref =~ ^v([0-9]+\.[0-9]+\.[0-9]+)$ ]]; then
    version=${BASH_REMATCH[1]}
  elif [[ $ref =~ ^v([0-9]+(\.[0-9]+)?)$ ]]; then
    # A moving tag (v0, v0.1) points at its latest release commit.
    prefix=${BASH_REMATCH[1]}
    found=$(workspace_version "$src" || true)
    [ -n "$found" ] || { dir=$(package_dir "$src") && found=$(awk '/^\[/{s=$0} s=="[package]" && /^version *=/{gsub(/"/,"",$3); print $3; exit}' "$dir/Cargo.toml"); } || true
    if [[ $found == "$prefix".* || $found == "$prefix" ]]; then
      version=$found
    else
      echo "rollout-runner: ref $ref holds version ${found:-?}, not a v$prefix release: building it"
    fi
  fi
fi

if [ -n "$version" ]; then
  dest=$cache/$version/$arch
  if [ -x "$dest/rollout-runner" ] && [ -f "$dest.complete" ]; then
    echo "rollout-runner: $version from the tool cache"
    done_with "$dest/rollout-runner"
  fi
  repository=${RR_ACTION_REPOSITORY:-}
  if [ -z "$repository" ] && [[ $src == */_actions/*/*/* ]]; then
    repository=$(basename "$(dirname "$(dirname "$src")")")/$(basename "$(dirname "$src")")
  fi
  # The input, else the runner's environment: a mirror set once for runners that cannot
  # reach github.com (self-hosted, air-gapped; the tests' own release server).
  base=${RR_RELEASE_URL:-${ROLLOUT_RUNNER_RELEASE_URL:-}}
  [ -n "$base" ] || base="https://github.com/${repository:-rollout-runner/rollout-runner}/releases/download/v{version}"
  base=${base//\{version\}/$version}
  archive=rollout-runner-$version-$target.tar.gz
  tmp=$(mktemp -d "${RUNNER_TEMP:-/tmp}/rollout-runner-install.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "rollout-runner: downloading $base/$archive"
  curl -fsSL --retry 3 --retry-delay 2 -o "$tmp/SHA256SUMS" "$base/SHA256SUMS" ||
    fail "cannot download $base/SHA256SUMS"
  curl -fsSL --retry 3 --retry-delay 2 -o "$tmp/$archive" "$base/$archive" ||
    fail "cannot download $base/$archive"
  want=$(awk -v f="$archive" '$2==f || $2=="*"f {print $1}' "$tmp/SHA256SUMS")
  [ -n "$want" ] || fail "SHA256SUMS has no line for $archive"
  got=$(sha256 "$tmp/$archive" | awk '{print $1}')
  [ "$got" = "$want" ] || fail "checksum mismatch for $archive: SHA256SUMS says $want, the download is $got"
  echo "rollout-runner: sha256 $got ok"
  tar -xzf "$tmp/$archive" -C "$tmp"
  mkdir -p "$dest"
  cp "$tmp/rollout-runner-$version-$target/rollout-runner" "$dest/rollout-runner.tmp"
  chmod 755 "$dest/rollout-runner.tmp"
  mv -f "$dest/rollout-runner.tmp" "$dest/rollout-runner"
  touch "$dest.complete"
  done_with "$dest/rollout-runner"
fi

# Not a release: build the action's checkout (a branch or a commit), once per content.
command -v cargo > /dev/null ||
  fail "the action's ref is not a release and cargo is missing: use a release (@v0), set the version input, or install Rust first"
pkg=$(package_dir "$src") || fail "no package with the rollout-runner binary under $src"
key=$(cd "$src" && find . -type f ! -path './target/*' ! -path './.git/*' -print0 |
  LC_ALL=C sort -z | xargs -0 cat | sha256 | cut -c1-16)
dest=$cache/src-$key/$arch
if [ -x "$dest/bin/rollout-runner" ] && [ -f "$dest.complete" ]; then
  echo "rollout-runner: source build src-$key from the tool cache"
  done_with "$dest/bin/rollout-runner"
fi
echo "rollout-runner: building $pkg from source (not a release ref; a cold build takes several minutes)"
export CARGO_TARGET_DIR=${RUNNER_TEMP:-/tmp}/rollout-runner-target
cargo install --locked --path "$pkg" --bin rollout-runner --root "$dest"
touch "$dest.complete"
done_with "$dest/bin/rollout-runner"
