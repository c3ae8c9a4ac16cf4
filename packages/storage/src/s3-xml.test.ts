import { describe, expect, it } from 'vitest';

import { XmlError, childElements, childText, parseXml, requiredChildText } from './s3-xml.js';

// The shape of a ListObjectsV2 answer as MinIO sends it (captured from MinIO 2026-02-12, keys
// changed): one line, the etag's quotes as character references.
const LIST_PAGE =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>dbg</Name>' +
  '<Prefix>l/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>' +
  '<Contents><Key>l/a &amp; b</Key><LastModified>2026-11-23T01:43:40.629Z</LastModified>' +
  '<ETag>&#34;9dd4e461268c8034f5c8564e155c67a6&#34;</ETag><Size>1</Size>' +
  '<StorageClass>STANDARD</StorageClass></Contents>' +
  '<Contents><Key>l/z\u{1f642}</Key><LastModified>2026-11-23T01:43:41.000Z</LastModified>' +
  '<ETag>"0123-2"</ETag><Size>10485760</Size><StorageClass>STANDARD</StorageClass></Contents>' +
  '<NextContinuationToken>bC9hL2I=</NextContinuationToken></ListBucketResult>';

describe('parseXml', () => {
  it('reads a ListObjectsV2 page: elements, text, entities and character references', () => {
    const root = parseXml(LIST_PAGE);
    expect(root.name).toBe('ListBucketResult');
    expect(childText(root, 'IsTruncated')).toBe('true');
    expect(requiredChildText(root, 'NextContinuationToken')).toBe('bC9hL2I=');
    const contents = childElements(root, 'Contents');
    expect(contents.map((c) => requiredChildText(c, 'Key'))).toEqual(['l/a & b', 'l/z\u{1f642}']);
    expect(contents.map((c) => requiredChildText(c, 'ETag'))).toEqual([
      '"9dd4e461268c8034f5c8564e155c67a6"',
      '"0123-2"',
    ]);
    expect(contents.map((c) => requiredChildText(c, 'Size'))).toEqual(['1', '10485760']);
    expect(childText(root, 'Missing')).toBeUndefined();
  });

  it('reads whitespace between elements, self-closing elements, comments and CDATA', () => {
    const root = parseXml(
      '\ufeff<?xml version="1.0"?>\n<Error>\n  <Code>NoSuchKey</Code>\n  <Empty/>\n' +
        '  <!-- a comment -->\n  <Message><![CDATA[a <raw> & text]]></Message>\n</Error>\n',
    );
    expect(root.name).toBe('Error');
    expect(childText(root, 'Code')).toBe('NoSuchKey');
    expect(childText(root, 'Empty')).toBe('');
    expect(childText(root, 'Message')).toBe('a <raw> & text');
    expect(root.children.map((c) => c.name)).toEqual(['Code', 'Empty', 'Message']);
  });

  it('decodes decimal and hexadecimal character references beyond the BMP', () => {
    expect(parseXml('<K>&#128578;&#x1F642;&lt;&gt;&apos;&quot;</K>').text).toBe(
      '\u{1f642}\u{1f642}<>\'"',
    );
  });

  it('refuses what S3 never sends and what a truncated answer looks like', () => {
    const bad = [
      '',
      '<A>',
      '<A></B>',
      '<A><B></A></B>',
      '<A/><B/>',
      'text<A/>',
      '<A>&unknown;</A>',
      '<A>&#xD800;</A>',
      '<A>&#1114112;</A>',
      '<A>& </A>',
      '<!DOCTYPE A><A/>',
      '<?xml-stylesheet href="x"?><A/>',
      '<A b=c/>',
      '<A b="c/>',
      '<A><!-- unterminated </A>',
      '<A>trailing</A> text',
    ];
    for (const source of bad) expect(() => parseXml(source), source).toThrow(XmlError);
  });

  it('refuses a child that should be single but is repeated', () => {
    const root = parseXml('<R><Key>a</Key><Key>b</Key></R>');
    expect(() => childText(root, 'Key')).toThrow(XmlError);
    expect(() => requiredChildText(root, 'Size')).toThrow(XmlError);
  });
});
