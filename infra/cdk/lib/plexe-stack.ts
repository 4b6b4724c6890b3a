// The plexe stack as CDK constructs: the same resources, parameters, conditions and outputs as
// infra/template.yaml (SAM), with the same logical ids for everything the SAM template names,
// so the two read alike and an operator finds the same names in either stack.
// tests/infra/check_cdk.sh synthesizes this app, lints it and compares it with the SAM
// template's expansion (tests/infra/parity.py); change both together. The comments in the SAM
// template explain the choices; this file notes only what is CDK-specific.
import * as fs from 'fs';
import * as path from 'path';
import {
  Aws,
  CfnCondition,
  CfnOutput,
  CfnParameter,
  CfnResource,
  Duration,
  Fn,
  RemovalPolicy,
  Size,
  Stack,
  StackProps,
  Validations,
} from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, IConstruct } from 'constructs';

export interface PlexeStackProps extends StackProps {
  /** Folder with one subfolder per binary, each holding `bootstrap` (cargo-lambda's output). */
  readonly codeDir: string;
}

/** Gives a construct's CloudFormation resource the logical id the SAM template uses. */
function named<T extends IConstruct>(construct: T, logicalId: string): T {
  (construct.node.defaultChild as CfnResource).overrideLogicalId(logicalId);
  return construct;
}

/** Creates the resource only when `condition` holds. */
function onlyIf<T extends IConstruct>(construct: T, condition: CfnCondition): T {
  (construct.node.defaultChild as CfnResource).cfnOptions.condition = condition;
  return construct;
}

const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

export class PlexeStack extends Stack {
  constructor(scope: Construct, id: string, props: PlexeStackProps) {
    super(scope, id, {
      ...props,
      description:
        'plexe on AWS: an HTTP API in front of one Lambda per endpoint group (keys, datasets, models, ' +
        'inference), an SQS-triggered trainer and task worker, one DynamoDB table, one S3 bucket, a job ' +
        'queue and a task queue with their dead-letter queues, alarms to one SNS topic (CDK app; the same ' +
        'stack as infra/template.yaml).',
    });

    // CDK's synth-time CloudFormation validation reads a resource reference inside the branch of
    // an Fn::If on the resource's own condition (TableName, BucketName outputs) as possibly
    // dangling; it is not (cfn-lint, run on the output by the test, agrees).
    Validations.of(this).acknowledge({
      id: 'CloudFormation-Validate::W1001',
      reason: 'references to PlexeTable / PlexeBucket sit in Fn::If branches on their own conditions',
    });

    // ------------------------------------------------------------ parameters and conditions

    const number = (name: string, def: number, description: string, min?: number, max?: number) =>
      new CfnParameter(this, name, { type: 'Number', default: def, minValue: min, maxValue: max, description });
    const rateLimitBasic = number('RateLimitBasic', 100, 'Requests per minute for accounts on the basic tier (PLEXE_RATE_LIMIT_BASIC).', 1);
    const rateLimitPro = number('RateLimitPro', 500, 'Requests per minute for accounts on the pro tier (PLEXE_RATE_LIMIT_PRO).', 1);
    const buildRateLimit = number('BuildRateLimit', 5, 'Model builds an account may start per minute (PLEXE_BUILD_RATE_LIMIT).', 1);
    const concurrentBuildsBasic = number('ConcurrentBuildsBasic', 2, 'Builds running at once for a basic account (PLEXE_CONCURRENT_BUILDS_BASIC).', 1);
    const concurrentBuildsPro = number('ConcurrentBuildsPro', 10, 'Builds running at once for a pro account (PLEXE_CONCURRENT_BUILDS_PRO).', 1);
    const trainerMemorySize = number(
      'TrainerMemorySize',
      10240,
      'Trainer memory in MB (also buys CPU). 10240 fits the largest upload (500 MB); lower it to 3008 if ' +
        "the account's Lambda memory quota is limited.",
      3008,
      10240,
    );
    const trainerMaxConcurrency = number(
      'TrainerMaxConcurrency', 10, 'Trainer invocations the job queue may run at once (caps cost and table load).', 2, 1000);
    const tasksMaxConcurrency = number(
      'TasksMaxConcurrency',
      10,
      'Task worker invocations the task queue may run at once (upload completions and batch prediction ' +
        'jobs; caps cost and table load).',
      2,
      1000,
    );
    const architecture = new CfnParameter(this, 'Architecture', {
      type: 'String',
      default: 'x86_64',
      allowedValues: ['x86_64', 'arm64'],
      description:
        'CPU of every function. x86_64 builds with the stock toolchain of an x86_64 Linux host; arm64 ' +
        "(Graviton, about 20% cheaper per GB-second) needs Rust's aarch64 standard library and zig for " +
        "cargo-lambda's cross-linking.",
    });
    const logLevel = new CfnParameter(this, 'LogLevel', {
      type: 'String',
      default: 'INFO',
      allowedValues: ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'],
      description:
        "Application log level of every function (Lambda's LoggingConfig; the functions read it as AWS_LAMBDA_LOG_LEVEL).",
    });
    const logRetentionDays = new CfnParameter(this, 'LogRetentionDays', {
      type: 'Number',
      default: 30,
      // Numbers, as CloudWatch takes them (the typing says strings).
      allowedValues: LOG_RETENTION_DAYS as unknown as string[],
      description: "Days the functions' CloudWatch log groups keep their logs.",
    });
    const throttlingRateLimit = number(
      'ThrottlingRateLimit',
      500,
      'Steady requests per second the HTTP API accepts over all routes and accounts (stage default route ' +
        'throttling; above it API Gateway answers 429). The per-account limits (RateLimit*) apply below it.',
      1,
    );
    const throttlingBurstLimit = number(
      'ThrottlingBurstLimit', 1000, 'Requests the HTTP API accepts in a burst above the steady rate.', 1);
    const enableTracing = new CfnParameter(this, 'EnableTracing', {
      type: 'String',
      default: 'false',
      allowedValues: ['true', 'false'],
      description:
        '"true" turns on AWS X-Ray active tracing for every function (and grants the X-Ray write actions); ' +
        'X-Ray bills per trace.',
    });
    const existingTableName = new CfnParameter(this, 'ExistingTableName', {
      type: 'String',
      default: '',
      description:
        'Name of an existing DynamoDB table to use (keys pk/sk strings, TTL on expires_at); empty creates one.',
    });
    const existingBucketName = new CfnParameter(this, 'ExistingBucketName', {
      type: 'String',
      default: '',
      description:
        'Name of an existing S3 bucket to use (give it the lifecycle rules of PlexeBucket yourself); empty ' +
        'creates one.',
    });
    const alarmEmail = new CfnParameter(this, 'AlarmEmail', {
      type: 'String',
      default: '',
      description: 'Optional address the alarms notify (confirm the subscription e-mail AWS sends).',
    });

    const hasAlarmEmail = new CfnCondition(this, 'HasAlarmEmail', {
      expression: Fn.conditionNot(Fn.conditionEquals(alarmEmail.valueAsString, '')),
    });
    const createTable = new CfnCondition(this, 'CreateTable', {
      expression: Fn.conditionEquals(existingTableName.valueAsString, ''),
    });
    const createBucket = new CfnCondition(this, 'CreateBucket', {
      expression: Fn.conditionEquals(existingBucketName.valueAsString, ''),
    });
    const tracingEnabled = new CfnCondition(this, 'TracingEnabled', {
      expression: Fn.conditionEquals(enableTracing.valueAsString, 'true'),
    });

    // ------------------------------------------------------------ storage

    const table = new dynamodb.Table(this, 'PlexeTable', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'expires_at',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    onlyIf(named(table, 'PlexeTable'), createTable);

    const bucket = new s3.Bucket(this, 'PlexeBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      // The console sends large files and fetches artifacts through presigned URLs (see the
      // SAM template's CorsConfiguration).
      cors: [
        {
          allowedMethods: [s3.HttpMethods.PUT, s3.HttpMethods.GET],
          allowedOrigins: ['*'],
          allowedHeaders: ['content-type', 'content-length'],
          exposedHeaders: ['ETag'],
          maxAge: 3600,
        },
      ],
      lifecycleRules: [
        {
          id: 'ExpireAbandonedUploads',
          prefix: 'uploads/',
          expiration: Duration.days(2),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
        { id: 'ExpireIdempotencyAnswers', prefix: 'idempotency/', expiration: Duration.days(1) },
        { id: 'ExpirePredictionResults', prefix: 'predictions/', expiration: Duration.days(7) },
      ],
    });
    onlyIf(named(bucket, 'PlexeBucket'), createBucket);
    // enforceSSL's bucket policy (deny plain HTTP) belongs to the bucket: only when created.
    onlyIf(named(bucket.policy!, 'PlexeBucketTlsOnlyPolicy'), createBucket);

    // The table's and bucket's names and ARNs: created, or the existing ones named.
    const tableName = Fn.conditionIf(createTable.logicalId, table.tableName, existingTableName.valueAsString).toString();
    const bucketName = Fn.conditionIf(createBucket.logicalId, bucket.bucketName, existingBucketName.valueAsString).toString();
    const tableArn = Fn.conditionIf(
      createTable.logicalId,
      table.tableArn,
      `arn:${Aws.PARTITION}:dynamodb:${Aws.REGION}:${Aws.ACCOUNT_ID}:table/${existingTableName.valueAsString}`,
    ).toString();
    const existingBucketArn = `arn:${Aws.PARTITION}:s3:::${existingBucketName.valueAsString}`;
    const bucketArn = Fn.conditionIf(createBucket.logicalId, bucket.bucketArn, existingBucketArn).toString();
    const objectsArn = (prefix: string) =>
      Fn.conditionIf(
        createBucket.logicalId,
        bucket.arnForObjects(`${prefix}*`),
        `${existingBucketArn}/${prefix}*`,
      ).toString();

    // ------------------------------------------------------------ queues

    const queuePair = (name: string, deadLetterName: string) => {
      const deadLetter = named(
        new sqs.Queue(this, deadLetterName, {
          retentionPeriod: Duration.days(14),
          encryption: sqs.QueueEncryption.SQS_MANAGED,
        }),
        deadLetterName,
      );
      const queue = named(
        new sqs.Queue(this, name, {
          // 6 × the worker's 900 s timeout.
          visibilityTimeout: Duration.seconds(5400),
          retentionPeriod: Duration.days(4),
          encryption: sqs.QueueEncryption.SQS_MANAGED,
          // Above the app's own attempt limit (MAX_ATTEMPTS = 3): the app decides when a job
          // failed, not SQS (see the SAM template's JobQueue).
          deadLetterQueue: { queue: deadLetter, maxReceiveCount: 5 },
        }),
        name,
      );
      return { queue, deadLetter };
    };
    const jobs = queuePair('JobQueue', 'JobDeadLetterQueue');
    const tasks = queuePair('TaskQueue', 'TaskDeadLetterQueue');

    // ------------------------------------------------------------ alarm topic

    // Unencrypted on purpose (see the SAM template).
    const alarmTopic = named(new sns.Topic(this, 'AlarmTopic', { displayName: 'plexe alarms' }), 'AlarmTopic');
    onlyIf(
      named(
        new sns.Subscription(this, 'AlarmEmailSubscription', {
          topic: alarmTopic,
          protocol: sns.SubscriptionProtocol.EMAIL,
          endpoint: alarmEmail.valueAsString,
        }),
        'AlarmEmailSubscription',
      ),
      hasAlarmEmail,
    );
    const alarm = (
      id: string,
      description: string,
      metric: cloudwatch.MetricProps,
      options: Partial<cloudwatch.AlarmProps> = {},
    ) => {
      const a = new cloudwatch.Alarm(this, id, {
        alarmDescription: description,
        metric: new cloudwatch.Metric({ period: Duration.minutes(5), ...metric }),
        evaluationPeriods: 1,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        ...options,
      });
      a.addAlarmAction(new cwActions.SnsAction(alarmTopic));
      return named(a, id);
    };

    // ------------------------------------------------------------ functions

    const environment: Record<string, string> = {
      PLEXE_BACKEND: 'aws',
      PLEXE_TABLE: tableName,
      PLEXE_BUCKET: bucketName,
      PLEXE_QUEUE_URL: jobs.queue.queueUrl,
      PLEXE_DLQ_URL: jobs.deadLetter.queueUrl,
      PLEXE_TASK_QUEUE_URL: tasks.queue.queueUrl,
      PLEXE_TASK_DLQ_URL: tasks.deadLetter.queueUrl,
      PLEXE_RATE_LIMIT_BASIC: rateLimitBasic.valueAsString,
      PLEXE_RATE_LIMIT_PRO: rateLimitPro.valueAsString,
      PLEXE_BUILD_RATE_LIMIT: buildRateLimit.valueAsString,
      PLEXE_CONCURRENT_BUILDS_BASIC: concurrentBuildsBasic.valueAsString,
      PLEXE_CONCURRENT_BUILDS_PRO: concurrentBuildsPro.valueAsString,
      AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH: 'true',
      // The runtime's CA bundle (Amazon Linux 2023). Without it the AWS SDK's TLS roots are
      // read from every file of the system's certificate directory too, on each cold start.
      SSL_CERT_FILE: '/etc/pki/tls/certs/ca-bundle.crt',
    };

    const allow = (sid: string, actions: string[], resources: string[]) =>
      new iam.PolicyStatement({ sid, effect: iam.Effect.ALLOW, actions, resources });
    const missingKeysAre404 = () => allow('MissingKeysAre404', ['s3:ListBucket'], [bucketArn]);
    const eventSource = (queue: sqs.IQueue) =>
      allow('EventSource', ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'], [queue.queueArn]);

    interface FunctionSpec {
      name: string;
      binary: string;
      description: string;
      memorySize: number;
      timeout: number;
      ephemeralStorage?: number;
      /** What the role grants besides writing to the function's own log group. */
      statements: iam.PolicyStatement[];
    }

    const tableStatement = (actions: string[]) => allow('Table', actions.map((a) => `dynamodb:${a}`), [tableArn]);

    // One role per function with exactly the actions its code calls (tests/infra/iam_actions.py),
    // no managed policies; the X-Ray actions only when EnableTracing is "true".
    const makeFunction = (spec: FunctionSpec) => {
      const codePath = path.join(props.codeDir, spec.binary);
      if (!fs.existsSync(path.join(codePath, 'bootstrap'))) {
        throw new Error(
          `no ${path.join(codePath, 'bootstrap')}: build the functions with \`cargo lambda build --release -p api-functions\` ` +
            'and `cargo lambda build --release -p functions --bin inference --bin trainer --bin tasks` ' +
            '(add --arm64 for Architecture=arm64) or pass -c codeDir=DIR',
        );
      }
      const logGroup = named(
        new logs.LogGroup(this, `${spec.name}LogGroup`, {
          retention: logRetentionDays.valueAsNumber,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
        `${spec.name}LogGroup`,
      );
      const role = named(
        new iam.Role(this, `${spec.name}Role`, {
          assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
          inlinePolicies: {
            [spec.binary]: new iam.PolicyDocument({
              statements: [
                allow('Logs', ['logs:CreateLogStream', 'logs:PutLogEvents'], [logGroup.logGroupArn]),
                ...spec.statements,
              ],
            }),
          },
        }),
        `${spec.name}Role`,
      );
      // A conditional second policy: CDK's PolicyDocument has no Fn::If for statements.
      (role.node.defaultChild as iam.CfnRole).addPropertyOverride(
        'Policies.1',
        Fn.conditionIf(
          tracingEnabled.logicalId,
          {
            PolicyName: 'xray',
            PolicyDocument: {
              Version: '2012-10-17',
              Statement: [
                {
                  Sid: 'Tracing',
                  Effect: 'Allow',
                  Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
                  Resource: '*',
                },
              ],
            },
          },
          Aws.NO_VALUE,
        ),
      );
      const fn = new lambda.Function(this, spec.name, {
        description: spec.description,
        code: lambda.Code.fromAsset(codePath),
        handler: 'bootstrap',
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture: lambda.Architecture.custom(architecture.valueAsString),
        memorySize: spec.memorySize,
        timeout: Duration.seconds(spec.timeout),
        ephemeralStorageSize: spec.ephemeralStorage ? Size.mebibytes(spec.ephemeralStorage) : undefined,
        environment,
        role,
        logGroup,
        loggingFormat: lambda.LoggingFormat.JSON,
        applicationLogLevelV2: logLevel.valueAsString as lambda.ApplicationLogLevel,
      });
      named(fn, spec.name);
      // The role's GetAtt already orders the function after its role (and the role has no
      // separate policy resource to wait for): the explicit DependsOn CDK adds is redundant
      // (cfn-lint W3005).
      (fn.node.defaultChild as CfnResource).addDeletionOverride('DependsOn');
      (fn.node.defaultChild as lambda.CfnFunction).tracingConfig = {
        mode: Fn.conditionIf(tracingEnabled.logicalId, 'Active', 'PassThrough').toString(),
      };
      alarm(
        `${spec.name.replace(/Function$/, '')}ThrottleAlarm`,
        `${spec.name} invocations are throttled (Lambda concurrency exhausted).`,
        {
          namespace: 'AWS/Lambda',
          metricName: 'Throttles',
          dimensionsMap: { FunctionName: fn.functionName },
          statistic: 'Sum',
        },
      );
      return fn;
    };

    const keysFunction = makeFunction({
      name: 'KeysFunction',
      binary: 'keys',
      description: 'plexe keys group (/me, /api-keys, /health, console, 404s)',
      memorySize: 256,
      timeout: 10,
      statements: [
        tableStatement(['DescribeTable', 'GetItem', 'UpdateItem', 'DeleteItem', 'ConditionCheckItem', 'Query']),
        allow('IdempotentAnswers', ['s3:GetObject', 's3:PutObject'], [objectsArn('idempotency/')]),
        missingKeysAre404(),
      ],
    });
    const datasetsFunction = makeFunction({
      name: 'DatasetsFunction',
      binary: 'datasets',
      description: 'plexe datasets group (/datasets, /v0/uploads)',
      memorySize: 2048,
      timeout: 29,
      ephemeralStorage: 2048,
      statements: [
        tableStatement(['GetItem', 'UpdateItem', 'DeleteItem', 'ConditionCheckItem', 'Query']),
        allow('Objects', ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], [objectsArn('')]),
        missingKeysAre404(),
        allow('EnqueueTasks', ['sqs:SendMessage'], [tasks.queue.queueArn]),
      ],
    });
    const modelsFunction = makeFunction({
      name: 'ModelsFunction',
      binary: 'models',
      description: 'plexe models group (/models, /v0/models)',
      memorySize: 512,
      timeout: 29,
      statements: [
        tableStatement(['GetItem', 'UpdateItem', 'DeleteItem', 'ConditionCheckItem', 'Query']),
        allow('Objects', ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], [objectsArn('')]),
        missingKeysAre404(),
        allow('EnqueueBuilds', ['sqs:SendMessage'], [jobs.queue.queueArn]),
        // A build from a large upload that is not completed yet queues its completion.
        allow('EnqueueCompletions', ['sqs:SendMessage'], [tasks.queue.queueArn]),
      ],
    });
    const inferenceFunction = makeFunction({
      name: 'InferenceFunction',
      binary: 'inference',
      description: 'plexe inference group (infer, predictions, prediction jobs, /openapi.json)',
      memorySize: 256,
      timeout: 29,
      statements: [
        tableStatement(['GetItem', 'UpdateItem', 'DeleteItem', 'Query']),
        // The artifacts it serves; a prediction job's input (its size) and result (a presigned
        // URL to download it).
        allow(
          'ReadArtifacts',
          ['s3:GetObject'],
          [objectsArn('models/'), objectsArn('uploads/'), objectsArn('datasets/'), objectsArn('predictions/')],
        ),
        allow('IdempotentAnswers', ['s3:GetObject', 's3:PutObject'], [objectsArn('idempotency/')]),
        missingKeysAre404(),
        // Batch prediction jobs are run by TasksFunction.
        allow('QueueTasks', ['sqs:SendMessage'], [tasks.queue.queueArn]),
      ],
    });
    const trainerFunction = makeFunction({
      name: 'TrainerFunction',
      binary: 'trainer',
      description: 'plexe trainer (SQS-triggered model builds)',
      memorySize: trainerMemorySize.valueAsNumber,
      timeout: 900,
      ephemeralStorage: 10240,
      statements: [
        tableStatement(['GetItem', 'UpdateItem', 'DeleteItem', 'ConditionCheckItem']),
        allow('ReadDatasets', ['s3:GetObject'], [objectsArn('datasets/')]),
        allow('Artifacts', ['s3:PutObject', 's3:DeleteObject'], [objectsArn('models/')]),
        missingKeysAre404(),
        eventSource(jobs.queue),
        // Hands a message back to be delivered again soon (a failed attempt, or a build the
        // invocation has no time left for) instead of after the queue's visibility timeout.
        allow('HandBack', ['sqs:ChangeMessageVisibility'], [jobs.queue.queueArn]),
      ],
    });
    const tasksFunction = makeFunction({
      name: 'TasksFunction',
      binary: 'tasks',
      description: 'plexe tasks (SQS-triggered upload completions and batch prediction jobs)',
      memorySize: 3008,
      timeout: 900,
      ephemeralStorage: 10240,
      statements: [
        tableStatement(['GetItem', 'UpdateItem', 'DeleteItem', 'ConditionCheckItem']),
        allow(
          'Objects',
          ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
          [objectsArn('uploads/'), objectsArn('datasets/')],
        ),
        // Batch prediction jobs: the version's artifact is read, the result written.
        allow('PredictionJobs', ['s3:GetObject'], [objectsArn('models/')]),
        allow('PredictionResults', ['s3:PutObject'], [objectsArn('predictions/')]),
        missingKeysAre404(),
        eventSource(tasks.queue),
      ],
    });

    // The queue workers: one message per invocation, partial batch failures. A plain event source
    // mapping rather than SqsEventSource, whose grant would add sqs:GetQueueUrl (and, on the task
    // queue, sqs:ChangeMessageVisibility) that nothing calls; the role's EventSource statement has
    // what the mapping needs.
    const queueWorker = (id: string, fn: lambda.Function, queue: sqs.IQueue, maxConcurrency: CfnParameter) =>
      named(
        new lambda.EventSourceMapping(this, id, {
          target: fn,
          eventSourceArn: queue.queueArn,
          batchSize: 1,
          reportBatchItemFailures: true,
          maxConcurrency: maxConcurrency.valueAsNumber,
        }),
        id,
      );
    queueWorker('TrainerFunctionJobs', trainerFunction, jobs.queue, trainerMaxConcurrency);
    queueWorker('TasksFunctionTasks', tasksFunction, tasks.queue, tasksMaxConcurrency);

    // ------------------------------------------------------------ HTTP API

    // Route precedence and `$default`: see the SAM template's PlexeHttpApi.
    const api = named(
      new apigwv2.HttpApi(this, 'PlexeHttpApi', {
        apiName: Aws.STACK_NAME,
        description: 'plexe API (every route at its bare path and under /v1)',
        createDefaultStage: false,
      }),
      'PlexeHttpApi',
    );
    named(
      new apigwv2.HttpStage(this, 'PlexeHttpApiApiGatewayDefaultStage', {
        httpApi: api,
        stageName: '$default',
        autoDeploy: true,
        throttle: {
          rateLimit: throttlingRateLimit.valueAsNumber,
          burstLimit: throttlingBurstLimit.valueAsNumber,
        },
      }),
      'PlexeHttpApiApiGatewayDefaultStage',
    );
    // One integration (and one invoke permission for the whole API) per function, as SAM does.
    const integration = (fn: lambda.Function) =>
      new HttpLambdaIntegration(`${fn.node.id}Integration`, fn, { scopePermissionToRoute: false });
    const keys = integration(keysFunction);
    const datasets = integration(datasetsFunction);
    const models = integration(modelsFunction);
    const inference = integration(inferenceFunction);

    new apigwv2.HttpRoute(this, 'DefaultRoute', {
      httpApi: api,
      routeKey: apigwv2.HttpRouteKey.DEFAULT,
      integration: keys,
    });
    const route = (method: apigwv2.HttpMethod, routePath: string, to: HttpLambdaIntegration) =>
      api.addRoutes({ path: routePath, methods: [method], integration: to });
    const { ANY, GET, POST } = apigwv2.HttpMethod;
    for (const prefix of ['', '/v1']) {
      route(GET, `${prefix}/me`, keys);
      route(ANY, `${prefix}/api-keys`, keys);
      route(ANY, `${prefix}/api-keys/{proxy+}`, keys);
      route(GET, `${prefix}/health`, keys);
      route(GET, `${prefix}/openapi.json`, inference);
      route(ANY, `${prefix}/datasets`, datasets);
      route(ANY, `${prefix}/datasets/{proxy+}`, datasets);
      route(ANY, `${prefix}/models`, models);
      route(ANY, `${prefix}/models/{proxy+}`, models);
      route(POST, `${prefix}/models/{model_name}/{model_version}/infer`, inference);
      route(POST, `${prefix}/models/{model_name}/{model_version}/predictions`, inference);
      route(ANY, `${prefix}/models/{model_name}/{model_version}/prediction-jobs`, inference);
      route(ANY, `${prefix}/models/{model_name}/{model_version}/prediction-jobs/{proxy+}`, inference);
    }
    // The legacy Plexe client surface.
    route(ANY, '/v0/uploads', datasets);
    route(ANY, '/v0/uploads/{proxy+}', datasets);
    route(POST, '/v0/models/{model_name}/{model_version}/infer', inference);
    route(ANY, '/v0/models', models);
    route(ANY, '/v0/models/{proxy+}', models);

    // ------------------------------------------------------------ alarms

    const deadLetterAlarm = (id: string, queue: sqs.Queue, description: string) =>
      alarm(id, description, {
        namespace: 'AWS/SQS',
        metricName: 'ApproximateNumberOfMessagesVisible',
        dimensionsMap: { QueueName: queue.queueName },
        statistic: 'Maximum',
      });
    deadLetterAlarm(
      'JobDeadLetterAlarm',
      jobs.deadLetter,
      'Build jobs are in the dead-letter queue: SQS gave up on them before the app did (or the message ' +
        "was unreadable); read the trainer's logs, then redrive or delete them.",
    );
    deadLetterAlarm(
      'TaskDeadLetterAlarm',
      tasks.deadLetter,
      'Tasks (upload completions, batch prediction jobs) are in the dead-letter queue; read the task ' +
        "worker's logs, then redrive or delete them.",
    );
    alarm(
      'ApiServerErrorAlarm',
      'More than 5% of API requests answered 5xx; read the functions\' logs (every line carries the request id).',
      { namespace: 'AWS/ApiGateway', metricName: '5xx', dimensionsMap: { ApiId: api.apiId }, statistic: 'Average' },
      {
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        threshold: 0.05,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      },
    );
    const errorAlarm = (id: string, fn: lambda.Function, who: string) =>
      alarm(id, `${who} failed an invocation (crash, timeout or out of memory); read its logs.`, {
        namespace: 'AWS/Lambda',
        metricName: 'Errors',
        dimensionsMap: { FunctionName: fn.functionName },
        statistic: 'Sum',
      });
    errorAlarm('TrainerErrorAlarm', trainerFunction, 'The trainer');
    errorAlarm('TasksErrorAlarm', tasksFunction, 'The task worker');

    // ------------------------------------------------------------ outputs

    const output = (id: string, description: string, value: string) => new CfnOutput(this, id, { description, value });
    // Written as the SAM template writes it (api.apiEndpoint is the same URL as a GetAtt).
    output(
      'ApiUrl',
      'Base URL of the plexe API (every route also under /v1)',
      `https://${api.apiId}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}`,
    );
    output('TableName', 'DynamoDB table (for `plexe admin` with PLEXE_BACKEND=aws)', tableName);
    output('BucketName', 'S3 bucket for datasets, uploads, ONNX artifacts and prediction results', bucketName);
    output('JobQueueUrl', 'SQS job queue (PLEXE_QUEUE_URL)', jobs.queue.queueUrl);
    output(
      'JobDeadLetterQueueUrl',
      'SQS dead-letter queue of the job queue (PLEXE_DLQ_URL; alarmed on depth)',
      jobs.deadLetter.queueUrl,
    );
    output('TaskQueueUrl', 'SQS task queue (PLEXE_TASK_QUEUE_URL)', tasks.queue.queueUrl);
    output(
      'TaskDeadLetterQueueUrl',
      'SQS dead-letter queue of the task queue (PLEXE_TASK_DLQ_URL; alarmed on depth)',
      tasks.deadLetter.queueUrl,
    );
    output('AlarmTopicArn', 'SNS topic every alarm notifies (subscribe more endpoints to it)', alarmTopic.topicArn);
  }
}
