// The console's components carry no words of their own: every text a reader sees comes from the
// message tables through t(). This reads each component's html`` templates with TypeScript's parser
// and fails on letters in their static text, or in a static aria-label, placeholder, title or alt.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { en, zhCN } from './messages.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const LETTERS = /[\p{L}]/u;
const SPOKEN_ATTRIBUTES = /\b(aria-label|placeholder|title|alt)\s*=\s*"([^"]*)"/g;

function components(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return components(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && e.name !== 'messages.ts' ? [path] : [];
  });
}

/** The static parts of each html`` template in a file, one list per template. */
function templates(path: string): string[][] {
  const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: string[][] = [];
  const visit = (node: ts.Node) => {
    if (ts.isTaggedTemplateExpression(node) && node.tag.getText(source) === 'html') {
      const t = node.template;
      if (ts.isNoSubstitutionTemplateLiteral(t)) found.push([t.text]);
      else found.push([t.head.text, ...t.templateSpans.map((s) => s.literal.text)]);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/**
 * Text a reader would see in a template's static parts: what lies outside tags, and static
 * spoken attributes. A binding may sit inside a tag, so whether a part starts in a tag carries on
 * from the part before.
 */
export function spokenText(parts: readonly string[]): string[] {
  const words: string[] = [];
  let inTag = false;
  let tag = '';
  for (const part of parts) {
    let outside = '';
    for (const ch of part) {
      if (ch === '<') inTag = true;
      else if (ch === '>' && inTag) {
        inTag = false;
        for (const m of tag.matchAll(SPOKEN_ATTRIBUTES)) if (LETTERS.test(m[2] ?? '')) words.push(m[0]);
        tag = '';
        outside += ' ';
      } else if (inTag) tag += ch;
      else outside += ch;
    }
    const text = outside.replace(/&[a-z]+;/g, ' ').trim();
    if (LETTERS.test(text)) words.push(text);
  }
  return words;
}

test('no component template holds words of its own', () => {
  const offenders: string[] = [];
  for (const file of components(HERE)) {
    for (const parts of templates(file)) {
      for (const words of spokenText(parts))
        offenders.push(`${file.slice(HERE.length)}: ${JSON.stringify(words)}`);
    }
  }
  assert.deepEqual(offenders, []);
});

test('the check finds words in text and in spoken attributes, and passes markup alone', () => {
  assert.deepEqual(spokenText(['<button class="x">Save</button>']), ['Save']);
  assert.deepEqual(spokenText(['<input placeholder="Search" />']), ['placeholder="Search"']);
  assert.deepEqual(spokenText(['<td class="labels"></td><td><a href=', '>', '</a></td>']), []);
  assert.deepEqual(spokenText(['<div class="', '" data-testid="apk-drop" @drop=', '>Drop here</div>']), [
    'Drop here',
  ]);
  assert.deepEqual(spokenText(['<input\n  aria-label="Name" value=', ' />']), ['aria-label="Name"']);
});

test('both languages have every message, with the same placeholders', () => {
  for (const [key, text] of Object.entries(en)) {
    const zh = zhCN[key as keyof typeof en];
    assert.ok(zh, `${key} has a Chinese text`);
    const names = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    assert.deepEqual(names(zh), names(text), `${key}: the same placeholders`);
  }
});
