#!/bin/sh
# Vendor Redoc's standalone bundle for /docs: `static/vendor/update-redoc.sh [VERSION]`.
# Fetches the npm package with npm into a temporary folder and copies the bundle and its licence
# files here; the server itself never downloads anything. One change is made to the bundle: the
# sidebar's "API docs by Redocly" link shows a logo from Redocly's CDN, which the page's policy
# refuses (and reports as an error); it gets an empty image instead, which Redoc then hides.
set -eu
version="${1:-2.5.4}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "redoc@$version" >/dev/null && tar xzf "redoc-$version.tgz")
target="$here/redoc"
mkdir -p "$target"
cp "$work/package/bundles/redoc.standalone.js" "$work/package/bundles/redoc.standalone.js.LICENSE.txt" "$target/"
cp "$work/package/LICENSE" "$target/LICENSE"
cdn_logo='https://cdn.redoc.ly/redoc/logo-mini.svg'
if [ "$(grep -o "$cdn_logo" "$target/redoc.standalone.js" | wc -l)" != 1 ]; then
  echo "redoc $version: the CDN logo is not where this script expects it; check the bundle by hand" >&2
  exit 1
fi
sed -i "s#$cdn_logo#data:,#" "$target/redoc.standalone.js"
echo "$version" > "$target/VERSION"
echo "redoc $version vendored in $target"
