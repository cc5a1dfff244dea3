import { describe, expect, it } from 'vitest';
import { explainS3Error, normalisePrefix } from '../../src/storage/s3-store.js';

function sdkError(name: string, message: string, status?: number): Error {
  const err = new Error(message);
  err.name = name;
  return status === undefined ? err : Object.assign(err, { $metadata: { httpStatusCode: status } });
}

describe('S3 store messages', () => {
  it('name the store, the operation and the answer, with a hint for refused credentials', () => {
    expect(explainS3Error('s3://pullgate/cache/', 'ListObjectsV2Command', sdkError('UnknownError', 'UnknownError', 403))).toBe(
      's3://pullgate/cache/ ListObjectsV2: HTTP 403 UnknownError (check the credentials the AWS SDK finds: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity, instance role)',
    );
    expect(explainS3Error('s3://b/', 'HeadObjectCommand', sdkError('Error', 'connect ECONNREFUSED 127.0.0.1:7480'))).toBe('s3://b/ HeadObject: Error: connect ECONNREFUSED 127.0.0.1:7480');
    expect(explainS3Error('s3://b/', 'GetObjectCommand', sdkError('PermanentRedirect', 'The bucket you are attempting to access must be addressed using the specified endpoint.', 301))).toContain('set storage.s3.region');
  });

  it('normalise the key prefix', () => {
    expect(normalisePrefix('')).toBe('');
    expect(normalisePrefix('/cache/')).toBe('cache/');
    expect(normalisePrefix('a/b')).toBe('a/b/');
  });
});
