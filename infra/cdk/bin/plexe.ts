#!/usr/bin/env node
// The plexe CDK app: one stack, the same as infra/template.yaml (SAM).
//
// Context values (`cdk synth -c name=value`):
// - codeDir: where the functions' binaries are, one folder per binary holding `bootstrap`
//   (cargo-lambda's layout). Default: the workspace's target/lambda, written by
//   `cargo lambda build --release -p api-functions` and `cargo lambda build --release -p
//   functions --bin inference --bin trainer --bin tasks` (add `--arm64` for
//   Architecture=arm64; see infra/README.md for why two builds). The test command
//   points it at placeholder files, so synth needs no Rust build.
// - stackName: the CloudFormation stack name (default plexe).
//
// The stack is environment-agnostic (no account or region at synth time, no lookups): account
// and region come from the credentials `cdk deploy` runs with.
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { PlexeStack } from '../lib/plexe-stack';

const app = new App();
const codeDir = path.resolve(
  app.node.tryGetContext('codeDir') ?? path.join(__dirname, '..', '..', '..', '..', 'target', 'lambda'),
);
const stackName: string = app.node.tryGetContext('stackName') ?? 'plexe';

new PlexeStack(app, 'plexe', { stackName, codeDir });
