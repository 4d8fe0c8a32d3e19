#!/usr/bin/env node
// `npx cphone` from the repository: the bundle (dist/cphone.mjs), rebuilt first when a source is newer.
import { BUNDLE, build, isStale } from '../build.mjs';

if (isStale()) await build();
await import(BUNDLE);
