/** An ECR authorization token: base64 of `AWS:<password>`, and when it expires (epoch ms). */
export interface EcrToken {
  token: string;
  expiresAt: number;
}

/** GetAuthorizationToken for a private registry (region set) or ECR Public (`public: true`, us-east-1). */
export type EcrApi = (request: { region: string; fips: boolean; public: boolean; env: NodeJS.ProcessEnv }) => Promise<EcrToken>;
