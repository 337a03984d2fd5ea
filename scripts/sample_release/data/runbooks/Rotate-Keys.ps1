<#
.SYNOPSIS
    Rotates the storage account keys used by the VibeData platform and stores the
    new connection material in Key Vault.
.NOTES
    Runbook type: PowerShell (runtime environment PowerShell-7.4).
    Runs as the deployment's user-assigned managed identity.
#>
param(
    [Parameter(Mandatory = $true)] [string] $ResourceGroupName,
    [Parameter(Mandatory = $true)] [string] $StorageAccountName,
    [Parameter(Mandatory = $true)] [string] $KeyVaultName,
    [ValidateSet('key1', 'key2')] [string] $KeyName = 'key2',
    [string] $IdentityClientId = $env:VIBEDATA_IDENTITY_CLIENT_ID
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

Connect-AzAccount -Identity -AccountId $IdentityClientId | Out-Null

Write-Output "Regenerating $KeyName of storage account $StorageAccountName"
New-AzStorageAccountKey -ResourceGroupName $ResourceGroupName -Name $StorageAccountName -KeyName $KeyName | Out-Null

$key = (Get-AzStorageAccountKey -ResourceGroupName $ResourceGroupName -Name $StorageAccountName |
        Where-Object { $_.KeyName -eq $KeyName }).Value
$secret = ConvertTo-SecureString -String $key -AsPlainText -Force
$tags = @{ 'vibedata-rotated-by' = 'Rotate-Keys'; 'vibedata-key-name' = $KeyName }

Set-AzKeyVaultSecret -VaultName $KeyVaultName -Name "storage-$StorageAccountName-key" -SecretValue $secret -Tag $tags | Out-Null
Write-Output "Stored the rotated key as secret storage-$StorageAccountName-key (value not shown)"
