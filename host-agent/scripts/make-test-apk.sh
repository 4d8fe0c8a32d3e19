#!/usr/bin/env bash
# Builds fixtures/test-app.apk: a minimal (unsigned) APK whose binary AndroidManifest.xml names
# package dev.cphone.testapp, versionCode 3, versionName 1.2.0. The virtual phone's `pm install`
# and the agent's install path read exactly these fields. Also fixtures/test-app-split.apk: a
# config split (split="config.xxhdpi") of the same package, for `adb install-multiple`.
# Needs Debian's aapt and framework-res.apk (for the android: attribute ids).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$here/fixtures/test-app.apk"
framework=/usr/share/android-framework-res/framework-res.apk
if ! command -v aapt >/dev/null || [ ! -f "$framework" ]; then
  apt-get install -y aapt android-framework-res
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/AndroidManifest.xml" <<'XML'
<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android"
    package="dev.cphone.testapp"
    android:versionCode="3"
    android:versionName="1.2.0">
    <uses-sdk android:minSdkVersion="21" android:targetSdkVersion="29" />
    <application android:label="cphone test app" android:hasCode="false" />
</manifest>
XML
aapt package -f -M "$work/AndroidManifest.xml" -I "$framework" -F "$work/test-app.apk"
mv "$work/test-app.apk" "$out"
aapt dump badging "$out" | head -1

cat > "$work/AndroidManifest.xml" <<'XML'
<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android"
    package="dev.cphone.testapp"
    split="config.xxhdpi"
    android:versionCode="3"
    android:versionName="1.2.0">
    <application android:hasCode="false" />
</manifest>
XML
aapt package -f -M "$work/AndroidManifest.xml" -I "$framework" -F "$work/test-app-split.apk"
mv "$work/test-app-split.apk" "$here/fixtures/test-app-split.apk"
aapt dump badging "$here/fixtures/test-app-split.apk" | head -1
