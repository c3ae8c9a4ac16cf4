/**
 * Just enough XML for the S3 REST API's responses (ListObjectsV2, multipart uploads, errors),
 * without a DOM parser: workerd has none. The parser is strict about what it accepts (balanced
 * tags, known entities, one root) and refuses everything S3 does not send (DTDs, processing
 * instructions other than the XML declaration), so a malformed or truncated answer fails loudly
 * instead of being half read.
 */

export interface XmlElement {
  readonly name: string;
  readonly children: readonly XmlElement[];
  /** Character data directly inside this element, entities decoded; '' for none. */
  readonly text: string;
}

export class XmlError extends Error {
  override readonly name = 'XmlError';
}

const NAME = /[A-Za-z_][\w.:-]*/y;
const ENTITY = /&(?:#(\d{1,7})|#x([\dA-Fa-f]{1,6})|(amp|lt|gt|quot|apos));/gy;

function decodeEntities(raw: string, at: number): string {
  if (!raw.includes('&')) return raw;
  let out = '';
  let last = 0;
  for (let i = raw.indexOf('&'); i !== -1; i = raw.indexOf('&', last)) {
    ENTITY.lastIndex = i;
    const match = ENTITY.exec(raw);
    if (match === null) throw new XmlError(`unknown entity at ${at + i}`);
    out += raw.slice(last, i);
    const [, decimal, hex, named] = match;
    if (named !== undefined) {
      out += { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[named];
    } else {
      const code = decimal !== undefined ? Number(decimal) : Number.parseInt(hex ?? '', 16);
      if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
        throw new XmlError(`character reference out of range at ${at + i}`);
      }
      out += String.fromCodePoint(code);
    }
    last = ENTITY.lastIndex;
  }
  return out + raw.slice(last);
}

interface OpenElement {
  name: string;
  children: XmlElement[];
  text: string;
}

/** Parses a whole document and returns its root element. */
export function parseXml(source: string): XmlElement {
  let i = 0;
  const stack: OpenElement[] = [];
  let root: XmlElement | undefined;

  const readName = (): string => {
    NAME.lastIndex = i;
    const match = NAME.exec(source);
    if (match === null) throw new XmlError(`expected a name at ${i}`);
    i = NAME.lastIndex;
    return match[0];
  };
  const skipSpace = (): void => {
    while (i < source.length && ' \t\r\n'.includes(source[i] ?? '')) i++;
  };

  // A byte order mark and the XML declaration may come first; nothing else may.
  if (source.startsWith('\ufeff')) i = 1;
  if (/^<\?xml\s/.test(source.slice(i, i + 6))) {
    const end = source.indexOf('?>', i);
    if (end === -1) throw new XmlError('unterminated XML declaration');
    i = end + 2;
  }

  while (i < source.length) {
    const lt = source.indexOf('<', i);
    const textEnd = lt === -1 ? source.length : lt;
    if (textEnd > i) {
      const raw = source.slice(i, textEnd);
      const top = stack.at(-1);
      if (top === undefined) {
        if (raw.trim() !== '') throw new XmlError(`text outside the root element at ${i}`);
      } else {
        top.text += decodeEntities(raw, i);
      }
      i = textEnd;
      continue;
    }
    // At '<'.
    if (source.startsWith('<!--', i)) {
      const end = source.indexOf('-->', i + 4);
      if (end === -1) throw new XmlError(`unterminated comment at ${i}`);
      i = end + 3;
      continue;
    }
    if (source.startsWith('<![CDATA[', i)) {
      const end = source.indexOf(']]>', i + 9);
      const top = stack.at(-1);
      if (end === -1 || top === undefined) throw new XmlError(`misplaced CDATA at ${i}`);
      top.text += source.slice(i + 9, end);
      i = end + 3;
      continue;
    }
    if (source[i + 1] === '/') {
      i += 2;
      const name = readName();
      skipSpace();
      if (source[i] !== '>') throw new XmlError(`expected '>' at ${i}`);
      i++;
      const open = stack.pop();
      if (open?.name !== name) {
        throw new XmlError(`</${name}> does not close <${open?.name ?? '(nothing)'}>`);
      }
      const element: XmlElement = open;
      const parent = stack.at(-1);
      if (parent === undefined) root = element;
      else parent.children.push(element);
      continue;
    }
    if (source[i + 1] === '!' || source[i + 1] === '?') {
      throw new XmlError(`unsupported markup at ${i}`);
    }
    i++;
    if (root !== undefined) throw new XmlError(`a second root element at ${i - 1}`);
    const name = readName();
    // Attributes (xmlns on the root, in practice) are read past but not kept.
    for (;;) {
      const before = i;
      skipSpace();
      if (source[i] === '>' || source.startsWith('/>', i)) break;
      if (i === before) throw new XmlError(`expected an attribute at ${i}`);
      readName();
      skipSpace();
      if (source[i] !== '=') throw new XmlError(`expected '=' at ${i}`);
      i++;
      skipSpace();
      const quote = source[i];
      if (quote !== '"' && quote !== "'") throw new XmlError(`expected a quoted value at ${i}`);
      const end = source.indexOf(quote, i + 1);
      if (end === -1) throw new XmlError(`unterminated attribute value at ${i}`);
      i = end + 1;
    }
    if (source[i] === '/') {
      i += 2;
      const element: XmlElement = { name, children: [], text: '' };
      const parent = stack.at(-1);
      if (parent === undefined) root = element;
      else parent.children.push(element);
    } else {
      i++;
      stack.push({ name, children: [], text: '' });
    }
  }
  if (stack.length > 0) throw new XmlError(`<${stack.at(-1)?.name ?? ''}> is never closed`);
  if (root === undefined) throw new XmlError('no root element');
  return root;
}

export function childElements(parent: XmlElement, name: string): XmlElement[] {
  return parent.children.filter((child) => child.name === name);
}

/** The text of the one child called `name`; undefined when there is none; an error when several. */
export function childText(parent: XmlElement, name: string): string | undefined {
  const found = childElements(parent, name);
  if (found.length > 1) throw new XmlError(`<${parent.name}> has ${found.length} <${name}>`);
  return found[0]?.text;
}

/** Like childText, but the child must be there. */
export function requiredChildText(parent: XmlElement, name: string): string {
  const text = childText(parent, name);
  if (text === undefined) throw new XmlError(`<${parent.name}> has no <${name}>`);
  return text;
}
